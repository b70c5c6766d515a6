//! `/v1/me` and what belongs to the signed-in user.

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use spruce_proto::{
    core::v1::GetUserRequest,
    scheduler::v1::{ListNotificationsRequest, RegisterDeviceRequest},
};

use super::{AppState, PageQuery, UserBody, page, page_limit, rfc3339};
use crate::{
    auth::AuthUser,
    error::ApiError,
    extract::{ApiJson, ApiQuery},
};

/// Returns the signed-in user.
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "me",
    security(("bearer" = [])),
    responses((status = 200, description = "the signed-in user", body = UserBody))
)]
pub(super) async fn me(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<UserBody>, ApiError> {
    let message = GetUserRequest {
        user_id: user.caller.user_id.to_string(),
    };
    let user = state
        .upstreams
        .users
        .clone()
        .get_user(user.request(message))
        .await?;
    Ok(Json(user.into_inner().into()))
}

/// A notification as the mobile apps see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Notification)]
pub(super) struct NotificationBody {
    #[schema(format = Uuid)]
    id: String,
    channel: String,
    kind: String,
    subject: String,
    body: String,
    /// `pending`, `sending`, `sent`, `failed` or `not_sent`.
    delivery: String,
    #[schema(format = DateTime)]
    created_at: Option<String>,
}

page! {
    /// What Spruce sent the user, newest first.
    NotificationPage of NotificationBody
}

/// `PUT /v1/me/device` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = DeviceRequest)]
#[serde(deny_unknown_fields)]
pub(super) struct DeviceBody {
    /// The push provider's token for this device; empty to stop push notifications.
    #[serde(default)]
    #[schema(max_length = 4096, pattern = r"^[\x21-\x7E]*$")]
    device_token: String,
}

/// Registers the signed-in user's device for push notifications (one device per user; the
/// newest wins). Without one, notifications come by email only.
#[utoipa::path(
    put,
    path = "/v1/me/device",
    tag = "me",
    request_body = DeviceBody,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "registered (or, with an empty token, removed)"),
        (
            status = 404,
            description = "the scheduler has not heard of the user yet (a moment after signup: try again)"
        ),
        (status = 422, description = "the token is not plausible")
    )
)]
pub(super) async fn register_device(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<DeviceBody>,
) -> Result<StatusCode, ApiError> {
    let message = RegisterDeviceRequest {
        device_token: body.device_token,
    };
    state
        .upstreams
        .notifications
        .clone()
        .register_device(user.request(message))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists what the scheduler sent the signed-in user, newest first.
#[utoipa::path(
    get,
    path = "/v1/me/notifications",
    tag = "me",
    params(PageQuery),
    security(("bearer" = [])),
    responses(
        (
            status = 200,
            description = "what Spruce sent the user, newest first",
            body = NotificationPage
        )
    )
)]
pub(super) async fn notifications(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<NotificationPage>, ApiError> {
    let message = ListNotificationsRequest {
        user_id: user.caller.user_id.to_string(),
        limit: page_limit(page.limit)?,
        cursor: page.cursor.unwrap_or_default(),
    };
    let response = state
        .upstreams
        .notifications
        .clone()
        .list_notifications(user.request(message))
        .await?
        .into_inner();
    let items = response
        .notifications
        .into_iter()
        .map(|notification| NotificationBody {
            created_at: notification.created_at.as_ref().and_then(rfc3339),
            id: notification.id,
            channel: notification.channel,
            kind: notification.kind,
            subject: notification.subject,
            body: notification.body,
            delivery: notification.delivery,
        })
        .collect();
    Ok(Json(NotificationPage::new(items, response.next_cursor)))
}
