//! `spruce.scheduler.v1.NotificationService`: wire in, use cases, wire out.

use spruce_platform::{
    identity::Caller,
    paging::{Cursor, page_limit},
    time::to_timestamp,
};
use spruce_proto::scheduler::v1::{
    ExportNotificationsRequest, ExportNotificationsResponse, ListNotificationsRequest,
    ListNotificationsResponse, Notification as WireNotification, RegisterDeviceRequest,
    RegisterDeviceResponse, notification_service_server::NotificationService,
};
use tonic::{Request, Response, Status};

use super::invalid;
use uuid::Uuid;

use crate::{domain::notifications::Notification, usecases::notifications::Notifications};

/// Serves users their notifications.
pub struct NotificationApi {
    notifications: Notifications,
}

impl NotificationApi {
    /// Serves `notifications`.
    pub fn new(notifications: Notifications) -> Self {
        NotificationApi { notifications }
    }
}

fn to_wire(notification: Notification) -> WireNotification {
    WireNotification {
        id: notification.id.to_string(),
        user_id: notification.user_id.to_string(),
        channel: notification.channel.as_str().to_owned(),
        body: notification.body,
        kind: notification.kind,
        subject: notification.subject,
        created_at: Some(to_timestamp(notification.created_at)),
        delivery: notification.delivery.as_str().to_owned(),
    }
}

#[tonic::async_trait]
impl NotificationService for NotificationApi {
    async fn register_device(
        &self,
        request: Request<RegisterDeviceRequest>,
    ) -> Result<Response<RegisterDeviceResponse>, Status> {
        let caller = Caller::of(&request);
        self.notifications
            .set_device(caller, &request.get_ref().device_token)
            .await?;
        Ok(Response::new(RegisterDeviceResponse {}))
    }

    async fn list_notifications(
        &self,
        request: Request<ListNotificationsRequest>,
    ) -> Result<Response<ListNotificationsResponse>, Status> {
        let caller = Caller::of(&request);
        let wire = request.get_ref();
        let user_id: Uuid = wire
            .user_id
            .parse()
            .map_err(|_| invalid("user_id", "must be a UUID"))?;
        let limit = page_limit(wire.limit).map_err(|message| invalid("limit", &message))?;
        let after =
            Cursor::from_wire(&wire.cursor).map_err(|message| invalid("cursor", &message))?;
        let (page, next) = self
            .notifications
            .list(caller, user_id, after, limit)
            .await?;
        Ok(Response::new(ListNotificationsResponse {
            notifications: page.into_iter().map(to_wire).collect(),
            next_cursor: next.map(|cursor| cursor.encode()).unwrap_or_default(),
        }))
    }

    async fn export_notifications(
        &self,
        request: Request<ExportNotificationsRequest>,
    ) -> Result<Response<ExportNotificationsResponse>, Status> {
        let json = self.notifications.export(Caller::of(&request)).await?;
        Ok(Response::new(ExportNotificationsResponse { json }))
    }
}
