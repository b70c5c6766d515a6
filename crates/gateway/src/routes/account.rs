//! Account recovery and care: verifying the email, resetting and changing the password,
//! the user's sessions, and their data: export and deletion.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use spruce_proto::{
    core::v1::{
        ChangePasswordRequest, DeleteUserRequest, EndSessionRequest, ExportUserRequest,
        ListSessionsRequest, RequestPasswordResetRequest, ResendVerificationRequest,
        ResetPasswordRequest, VerifyEmailRequest,
    },
    scheduler::v1::ExportNotificationsRequest,
};

use super::{AppState, UserBody, auth::require, rfc3339};
use crate::{
    auth::AuthUser,
    error::ApiError,
    extract::{ApiJson, ClientAddress},
};

/// `POST /v1/auth/verify-email` body: the code (signed in) or the link's token.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = VerifyEmailRequest)]
#[serde(deny_unknown_fields)]
pub(super) struct VerifyEmailBody {
    /// The six digits from the email, sent with the user's own access token.
    #[serde(default)]
    #[schema(pattern = "^[0-9]{6}$", example = "042137")]
    code: String,
    /// The `token` of the email's link, sent without an access token.
    #[serde(default)]
    #[schema(max_length = 128)]
    token: String,
}

/// Confirms the email: with the code and the user's access token, or with the link's
/// token alone. A code works for 30 minutes and allows 5 wrong tries.
#[utoipa::path(
    post,
    path = "/v1/auth/verify-email",
    tag = "auth",
    request_body = VerifyEmailBody,
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "the user, email_verified now true", body = UserBody),
        (status = 401, description = "a code without an access token"),
        (status = 422, description = "a wrong, expired or used code or token"),
        (status = 429, description = "5 wrong codes: ask for a new one")
    )
)]
pub(super) async fn verify_email(
    State(state): State<AppState>,
    user: Option<AuthUser>,
    ApiJson(body): ApiJson<VerifyEmailBody>,
) -> Result<Json<UserBody>, ApiError> {
    if body.code.len() > 32 || body.token.len() > 128 {
        return Err(ApiError::invalid_field("code", "is not a code we sent"));
    }
    let message = VerifyEmailRequest {
        code: body.code,
        token: body.token,
    };
    let request = match (&user, message.code.trim().is_empty()) {
        (Some(user), _) => user.request(message),
        (None, false) => {
            return Err(ApiError::unauthenticated(
                "a code needs the access token of the account it was sent to",
            ));
        }
        (None, true) => state.upstreams.as_gateway(message)?,
    };
    let verified = state.upstreams.users.clone().verify_email(request).await?;
    Ok(Json(verified.into_inner().into()))
}

/// Sends a new verification code and link (the earlier ones stop working); 5 an hour.
#[utoipa::path(
    post,
    path = "/v1/auth/verify-email/resend",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "a new email is on its way"),
        (status = 409, description = "the email is verified already"),
        (status = 429, description = "too many in an hour (Retry-After)")
    )
)]
pub(super) async fn resend_verification(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<StatusCode, ApiError> {
    state
        .throttle
        .verification_resend(user.caller.user_id)
        .await
        .map_err(|blocked| ApiError::too_many_attempts(blocked.retry_after_secs))?;
    state
        .upstreams
        .users
        .clone()
        .resend_verification(user.request(ResendVerificationRequest {}))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/auth/password-reset` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = PasswordResetRequest)]
#[serde(deny_unknown_fields)]
pub(super) struct PasswordResetBody {
    #[serde(default)]
    #[schema(required = true, format = Email, max_length = 254)]
    email: String,
}

/// What a password reset request answers, whoever the email belongs to.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct PasswordResetAccepted {
    detail: &'static str,
}

/// Emails a reset link (valid 30 minutes, once) when the address belongs to an account.
/// The answer is the same, and as quick, either way; 3 an hour per email and 20 per client
/// address.
#[utoipa::path(
    post,
    path = "/v1/auth/password-reset",
    tag = "auth",
    request_body = PasswordResetBody,
    responses(
        (
            status = 202,
            description = "if the address has an account, a link is on its way",
            body = PasswordResetAccepted
        ),
        (
            status = 429,
            description = "too many requests for this email or from this address (Retry-After)"
        )
    )
)]
pub(super) async fn request_password_reset(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    ApiJson(body): ApiJson<PasswordResetBody>,
) -> Result<(StatusCode, Json<PasswordResetAccepted>), ApiError> {
    require(&[("email", &body.email)])?;
    state
        .throttle
        .password_reset(&body.email, address)
        .await
        .map_err(|blocked| ApiError::too_many_attempts(blocked.retry_after_secs))?;
    let message = RequestPasswordResetRequest { email: body.email };
    state
        .upstreams
        .users
        .clone()
        .request_password_reset(state.upstreams.as_gateway(message)?)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(PasswordResetAccepted {
            detail: "if the address belongs to an account, a reset link is on its way",
        }),
    ))
}

/// `POST /v1/auth/password-reset/confirm` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = ConfirmPasswordResetRequest)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfirmResetBody {
    /// The `token` of the email's link.
    #[serde(default)]
    #[schema(required = true, min_length = 1, max_length = 128)]
    token: String,
    #[serde(default)]
    #[schema(required = true, format = Password, min_length = 8, max_length = 128)]
    new_password: String,
}

/// Sets a new password with the reset link's token; every session ends, and the user is
/// told by email.
#[utoipa::path(
    post,
    path = "/v1/auth/password-reset/confirm",
    tag = "auth",
    request_body = ConfirmResetBody,
    responses(
        (status = 204, description = "the password is changed and every session ended"),
        (
            status = 422,
            description = "a wrong, expired or used token, or a password that breaks the rules"
        )
    )
)]
pub(super) async fn confirm_password_reset(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ConfirmResetBody>,
) -> Result<StatusCode, ApiError> {
    require(&[("token", &body.token), ("new_password", &body.new_password)])?;
    if body.token.len() > 128 {
        return Err(ApiError::invalid_field(
            "token",
            "is not a reset link's token",
        ));
    }
    let message = ResetPasswordRequest {
        token: body.token,
        new_password: body.new_password,
    };
    state
        .upstreams
        .users
        .clone()
        .reset_password(state.upstreams.as_gateway(message)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/me/password` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = ChangePasswordRequest)]
#[serde(deny_unknown_fields)]
pub(super) struct ChangePasswordBody {
    #[serde(default)]
    #[schema(required = true, format = Password, min_length = 1)]
    current_password: String,
    #[serde(default)]
    #[schema(required = true, format = Password, min_length = 8, max_length = 128)]
    new_password: String,
}

/// Changes the password, given the current one; every other session ends.
#[utoipa::path(
    post,
    path = "/v1/me/password",
    tag = "me",
    request_body = ChangePasswordBody,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "changed; this session goes on, the others end"),
        (
            status = 422,
            description = "the current password is wrong, or the new one breaks the rules"
        )
    )
)]
pub(super) async fn change_password(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<ChangePasswordBody>,
) -> Result<StatusCode, ApiError> {
    require(&[
        ("current_password", &body.current_password),
        ("new_password", &body.new_password),
    ])?;
    let message = ChangePasswordRequest {
        current_password: body.current_password,
        new_password: body.new_password,
    };
    state
        .upstreams
        .users
        .clone()
        .change_password(user.request(message))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A signed-in device.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = SessionInfo)]
pub(super) struct SessionInfoBody {
    #[schema(format = Uuid)]
    id: String,
    /// What the client said it was when it signed in (its User-Agent).
    device: String,
    #[schema(format = DateTime)]
    created_at: Option<String>,
    #[schema(format = DateTime)]
    last_used_at: Option<String>,
    /// The session this request came from.
    current: bool,
}

/// The user's live sessions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = SessionList)]
pub(super) struct SessionsBody {
    items: Vec<SessionInfoBody>,
}

/// Lists the signed-in user's sessions, the most recently used first.
#[utoipa::path(
    get,
    path = "/v1/me/sessions",
    tag = "me",
    security(("bearer" = [])),
    responses((status = 200, description = "the live sessions", body = SessionsBody))
)]
pub(super) async fn list_sessions(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<SessionsBody>, ApiError> {
    let response = state
        .upstreams
        .users
        .clone()
        .list_sessions(user.request(ListSessionsRequest {}))
        .await?
        .into_inner();
    Ok(Json(SessionsBody {
        items: response
            .sessions
            .into_iter()
            .map(|session| SessionInfoBody {
                created_at: session.created_at.as_ref().and_then(rfc3339),
                last_used_at: session.last_used_at.as_ref().and_then(rfc3339),
                id: session.id,
                device: session.device,
                current: session.current,
            })
            .collect(),
    }))
}

/// Ends one of the signed-in user's sessions (its refresh token stops working; its access
/// token lapses within 15 minutes).
#[utoipa::path(
    delete,
    path = "/v1/me/sessions/{id}",
    tag = "me",
    params(("id" = Uuid, Path, description = "the session id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "ended"),
        (status = 404, description = "no such session of yours")
    )
)]
pub(super) async fn end_session(
    State(state): State<AppState>,
    user: AuthUser,
    Path(session_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .upstreams
        .users
        .clone()
        .end_session(user.request(EndSessionRequest { session_id }))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Everything Spruce holds about the signed-in user, gathered from every service.
#[utoipa::path(
    get,
    path = "/v1/me/export",
    tag = "me",
    security(("bearer" = [])),
    responses(
        (
            status = 200,
            description = "one JSON object: user, addresses, cleaner_profile, bookings, reviews_written, reviews_received, sessions (core); recipient with the device token, notifications (the scheduler); exported_at",
            body = Object
        ),
        (
            status = 503,
            description = "a service holding some of it is down: nothing partial is answered"
        )
    )
)]
pub(super) async fn export(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Value>, ApiError> {
    let (mut users, mut notifications) = (
        state.upstreams.users.clone(),
        state.upstreams.notifications.clone(),
    );
    let (core, scheduler) = tokio::join!(
        users.export_user(user.request(ExportUserRequest {})),
        notifications.export_notifications(user.request(ExportNotificationsRequest {})),
    );
    let unreadable = |what: &str| {
        ApiError::from(tonic::Status::internal(format!(
            "{what} answered an export that is not a JSON object"
        )))
    };
    let mut document: serde_json::Map<String, Value> =
        serde_json::from_str(&core?.into_inner().json).map_err(|_| unreadable("core"))?;
    let held: serde_json::Map<String, Value> = serde_json::from_str(&scheduler?.into_inner().json)
        .map_err(|_| unreadable("the scheduler"))?;
    document.extend(held);
    document.insert(
        "exported_at".to_owned(),
        Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    );
    Ok(Json(Value::Object(document)))
}

/// `DELETE /v1/me` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = DeleteAccountRequest)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteAccountBody {
    #[serde(default)]
    #[schema(required = true, format = Password, min_length = 1)]
    password: String,
}

/// How long a deleted account's access tokens are refused: longer than any lives.
const REVOKED_FOR_SECS: u64 = 3_600;

/// Deletes the signed-in user's account, given their password. Open bookings are
/// cancelled and their payments released; personal data is erased (bookings stay for
/// accounting, naming a deleted user); sign-in and every token stop working at once; every
/// service forgets the user (`user.deleted`).
#[utoipa::path(
    delete,
    path = "/v1/me",
    tag = "me",
    request_body = DeleteAccountBody,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "deleted"),
        (status = 422, description = "the password is wrong")
    )
)]
pub(super) async fn delete_account(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<DeleteAccountBody>,
) -> Result<StatusCode, ApiError> {
    require(&[("password", &body.password)])?;
    let message = DeleteUserRequest {
        password: body.password,
    };
    state
        .upstreams
        .users
        .clone()
        .delete_user(user.request(message))
        .await?;
    state
        .revocations
        .revoke(user.caller.user_id, REVOKED_FOR_SECS)
        .await;
    Ok(StatusCode::NO_CONTENT)
}
