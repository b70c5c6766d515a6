//! `/v1/me` and what belongs to the signed-in user.

use axum::{Json, extract::State};
use serde::Serialize;
use spruce_proto::{core::v1::GetUserRequest, scheduler::v1::ListNotificationsRequest};

use super::{AppState, Page, PageQuery, UserBody, rfc3339};
use crate::{auth::AuthUser, error::ApiError, extract::ApiQuery};

/// Returns the signed-in user.
#[utoipa::path(get, path = "/v1/me", tag = "me", security(("bearer" = [])), responses((status = 200, description = "the signed-in user", body = UserBody)))]
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
pub(super) struct NotificationBody {
    id: String,
    channel: String,
    kind: String,
    subject: String,
    body: String,
    created_at: Option<String>,
}

/// Lists what the scheduler sent the signed-in user, newest first.
#[utoipa::path(get, path = "/v1/me/notifications", tag = "me", params(PageQuery), security(("bearer" = [])), responses((status = 200, description = "what Spruce sent the user, newest first", body = Page<NotificationBody>)))]
pub(super) async fn notifications(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<Page<NotificationBody>>, ApiError> {
    let message = ListNotificationsRequest {
        user_id: user.caller.user_id.to_string(),
        limit: page.limit.unwrap_or(0),
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
        })
        .collect();
    Ok(Json(Page::new(items, response.next_cursor)))
}
