//! `spruce.scheduler.v1.NotificationService` over tonic.

use spruce_platform::identity::Caller;
use spruce_platform::time::to_timestamp;
use spruce_proto::scheduler::v1::{
    ListNotificationsRequest, ListNotificationsResponse, Notification as WireNotification,
    notification_service_server::NotificationService,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    error::SchedulerError,
    notifications::{Cursor, Notification, page_limit},
    store,
};

/// Serves users their notifications.
pub struct NotificationApi {
    pool: PgPool,
}

impl NotificationApi {
    /// Serves notifications from `pool`.
    pub fn new(pool: PgPool) -> Self {
        NotificationApi { pool }
    }

    async fn list(
        &self,
        caller: Option<Caller>,
        request: &ListNotificationsRequest,
    ) -> Result<ListNotificationsResponse, SchedulerError> {
        let caller = caller.ok_or(SchedulerError::Unauthenticated)?;
        let invalid = |field, message: &str| SchedulerError::Validation {
            field,
            message: message.to_owned(),
        };
        let user_id: Uuid = request
            .user_id
            .parse()
            .map_err(|_| invalid("user_id", "must be a UUID"))?;
        let limit = page_limit(request.limit).map_err(|message| invalid("limit", &message))?;
        let cursor = match request.cursor.as_str() {
            "" => None,
            text => Some(
                Cursor::decode(text)
                    .ok_or_else(|| invalid("cursor", "is not a cursor we issued"))?,
            ),
        };
        // Someone else's notifications look like no notifications.
        if !caller.may_access(user_id) {
            return Ok(ListNotificationsResponse::default());
        }
        let mut connection = self.pool.acquire().await?;
        // One extra row tells whether another page exists.
        let mut page =
            store::notifications::list_notifications(&mut connection, user_id, cursor, limit + 1)
                .await?;
        let more = page.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        page.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_cursor = match page.last() {
            Some(last) if more => Cursor {
                created_at: last.created_at,
                id: last.id,
            }
            .encode(),
            _ => String::new(),
        };
        Ok(ListNotificationsResponse {
            notifications: page.into_iter().map(to_wire).collect(),
            next_cursor,
        })
    }
}

fn to_wire(notification: Notification) -> WireNotification {
    WireNotification {
        id: notification.id.to_string(),
        user_id: notification.user_id.to_string(),
        channel: notification.channel.to_owned(),
        kind: notification.kind,
        subject: notification.subject,
        body: notification.body,
        created_at: Some(to_timestamp(notification.created_at)),
    }
}

#[tonic::async_trait]
impl NotificationService for NotificationApi {
    async fn list_notifications(
        &self,
        request: Request<ListNotificationsRequest>,
    ) -> Result<Response<ListNotificationsResponse>, Status> {
        let caller = Caller::read_from(request.metadata());
        Ok(Response::new(self.list(caller, request.get_ref()).await?))
    }
}
