//! `spruce.scheduler.v1.NotificationService`.

use spruce_platform::identity::Caller;
use spruce_platform::paging::{Cursor, page_limit, split_page};
use spruce_platform::reason::FieldError;
use spruce_platform::time::to_timestamp;
use spruce_proto::scheduler::v1::{
    ExportNotificationsRequest, ExportNotificationsResponse, ListNotificationsRequest,
    ListNotificationsResponse, Notification as WireNotification, RegisterDeviceRequest,
    RegisterDeviceResponse, notification_service_server::NotificationService,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    error::SchedulerError,
    notifications::{Notification, SECRET_KINDS, SENT_BY_EMAIL, carries_secret},
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
        let invalid = |field: &str, message: &str| {
            SchedulerError::Validation(FieldError::new(field, message))
        };
        let user_id: Uuid = request
            .user_id
            .parse()
            .map_err(|_| invalid("user_id", "must be a UUID"))?;
        let limit = page_limit(request.limit).map_err(|message| invalid("limit", &message))?;
        let cursor =
            Cursor::from_wire(&request.cursor).map_err(|message| invalid("cursor", &message))?;
        // Someone else's notifications look like no notifications.
        if !caller.may_access(user_id) {
            return Ok(ListNotificationsResponse::default());
        }
        let mut connection = self.pool.acquire().await?;
        // One extra row tells whether another page exists.
        let rows =
            store::notifications::list_notifications(&mut connection, user_id, cursor, limit + 1)
                .await?;
        let (page, next) = split_page(rows, limit, |row| Cursor {
            created_at: row.created_at,
            id: row.id,
        });
        let next_cursor = next.map(|cursor| cursor.encode()).unwrap_or_default();
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
        channel: notification.channel.as_str().to_owned(),
        body: if carries_secret(&notification.kind) {
            SENT_BY_EMAIL.to_owned()
        } else {
            notification.body
        },
        kind: notification.kind,
        subject: notification.subject,
        created_at: Some(to_timestamp(notification.created_at)),
        delivery: notification.delivery.as_str().to_owned(),
    }
}

impl NotificationApi {
    async fn set_device(&self, caller: Option<Caller>, token: &str) -> Result<(), SchedulerError> {
        let caller = caller.ok_or(SchedulerError::Unauthenticated)?;
        let plausible = token.len() <= 4_096 && token.chars().all(|c| c.is_ascii_graphic());
        if !plausible {
            return Err(SchedulerError::Validation(FieldError::new(
                "device_token",
                "must be at most 4096 printable ASCII characters",
            )));
        }
        let token = (!token.is_empty()).then_some(token);
        let mut connection = self.pool.acquire().await?;
        if store::notifications::set_device(&mut connection, caller.user_id, token).await? {
            Ok(())
        } else {
            Err(SchedulerError::NotFound("user"))
        }
    }
}

#[tonic::async_trait]
impl NotificationService for NotificationApi {
    async fn register_device(
        &self,
        request: Request<RegisterDeviceRequest>,
    ) -> Result<Response<RegisterDeviceResponse>, Status> {
        let caller = Caller::of(&request);
        self.set_device(caller, &request.get_ref().device_token)
            .await?;
        Ok(Response::new(RegisterDeviceResponse {}))
    }

    async fn list_notifications(
        &self,
        request: Request<ListNotificationsRequest>,
    ) -> Result<Response<ListNotificationsResponse>, Status> {
        let caller = Caller::of(&request);
        Ok(Response::new(self.list(caller, request.get_ref()).await?))
    }

    async fn export_notifications(
        &self,
        request: Request<ExportNotificationsRequest>,
    ) -> Result<Response<ExportNotificationsResponse>, Status> {
        let caller = Caller::of(&request).ok_or(SchedulerError::Unauthenticated)?;
        let mut connection = self.pool.acquire().await.map_err(SchedulerError::from)?;
        let json = store::notifications::export(
            &mut connection,
            caller.user_id,
            SECRET_KINDS,
            SENT_BY_EMAIL,
        )
        .await
        .map_err(SchedulerError::from)?;
        Ok(Response::new(ExportNotificationsResponse { json }))
    }
}
