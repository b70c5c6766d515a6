//! `/v1/auth/*`: signup, login, refresh, logout (verification and recovery are in
//! `account`).

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode, header},
};
use serde::{Deserialize, Serialize};
use spruce_domain::reason::Reason;
use spruce_proto::core::v1::{
    AuthResponse, AuthenticateRequest, RefreshSessionRequest, RegisterRequest,
    RevokeSessionRequest, Role,
};

use super::{AppState, UserBody};
use crate::{
    auth::AuthUser,
    error::ApiError,
    extract::{ApiJson, ClientAddress},
    fields::{Checks, Field},
};

/// `POST /v1/auth/signup` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = SignupRequest)]
#[serde(deny_unknown_fields)]
pub(super) struct SignupBody {
    #[serde(default)]
    #[schema(required = true, format = Email, max_length = 254)]
    email: String,
    #[serde(default)]
    #[schema(required = true, format = Password, min_length = 8, max_length = 128)]
    password: String,
    #[serde(default)]
    #[schema(required = true, min_length = 1, max_length = 100, format = "line")]
    full_name: String,
    /// `customer` or `cleaner` (admins are made by operators).
    #[serde(default)]
    #[schema(required = true, value_type = SignupRole)]
    role: Field<SignupRole>,
    /// The IANA zone the user reads times in (the device's, e.g. `Europe/Berlin`);
    /// notifications show times in it. `UTC` when left out.
    #[serde(default)]
    #[schema(max_length = 64, example = "Europe/Berlin")]
    timezone: String,
}

/// Who signs up.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum SignupRole {
    Customer,
    Cleaner,
}

/// `POST /v1/auth/login` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = LoginRequest)]
#[serde(deny_unknown_fields)]
pub(super) struct LoginBody {
    #[serde(default)]
    #[schema(required = true, format = Email, max_length = 254)]
    email: String,
    #[serde(default)]
    #[schema(required = true, format = Password, min_length = 1)]
    password: String,
}

/// `POST /v1/auth/refresh` and `/logout` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = RefreshRequest)]
#[serde(deny_unknown_fields)]
pub(super) struct RefreshBody {
    #[serde(default)]
    #[schema(required = true, min_length = 1)]
    refresh_token: String,
}

/// Tokens (and the user) after signup, login or refresh. A new user's `email_verified` is
/// false until they enter the code emailed to them (`POST /v1/auth/verify-email`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Session)]
pub(super) struct SessionBody {
    user: UserBody,
    access_token: String,
    refresh_token: String,
    token_type: &'static str,
    expires_in: i64,
}

fn session_body(response: AuthResponse) -> Result<SessionBody, ApiError> {
    let (Some(user), Some(session)) = (response.user, response.session) else {
        return Err(tonic::Status::internal("core answered without a user or session").into());
    };
    Ok(SessionBody {
        user: user.into(),
        access_token: session.access_token,
        refresh_token: session.refresh_token,
        token_type: "Bearer",
        expires_in: session.expires_in,
    })
}

/// What the client says it is (its User-Agent), for the session list; core shortens it.
fn device(headers: &HeaderMap) -> String {
    headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

/// 422 naming every one of `fields` (name, text) left blank.
pub(super) fn require(fields: &[(&str, &str)]) -> Result<(), ApiError> {
    let mut checks = Checks::default();
    for (field, value) in fields {
        if value.trim().is_empty() {
            checks.refuse(field, "is required");
        }
    }
    checks.finish()
}

/// Creates a customer or cleaner account and signs it in.
#[utoipa::path(
    post,
    path = "/v1/auth/signup",
    tag = "auth",
    request_body = SignupBody,
    responses(
        (status = 201, description = "the account and its first session", body = SessionBody),
        (status = 409, description = "the email is taken"),
        (status = 429, description = "too many signups from this address (Retry-After)")
    )
)]
pub(super) async fn signup(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignupBody>,
) -> Result<(StatusCode, Json<SessionBody>), ApiError> {
    state
        .throttle
        .signup_attempt(address)
        .await
        .map_err(|blocked| ApiError::too_many_attempts(blocked.retry_after_secs))?;
    // A missing or unknown role goes to core as unspecified: core names it with every
    // other field at fault.
    let role = match body.role {
        Field::Valid(SignupRole::Customer) => Role::Customer,
        Field::Valid(SignupRole::Cleaner) => Role::Cleaner,
        Field::Absent | Field::Invalid(_) => Role::Unspecified,
    };
    let message = RegisterRequest {
        email: body.email,
        password: body.password,
        full_name: body.full_name,
        role: role.into(),
        timezone: body.timezone,
        device: device(&headers),
    };
    let response = state
        .upstreams
        .users
        .clone()
        .register(state.upstreams.as_gateway(message)?)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(session_body(response.into_inner())?),
    ))
}

/// Signs in with an email and password; repeated failures for one email are refused with
/// 429 for a while.
#[utoipa::path(
    post,
    path = "/v1/auth/login",
    tag = "auth",
    request_body = LoginBody,
    responses(
        (status = 200, description = "a new session", body = SessionBody),
        (status = 401, description = "wrong email or password"),
        (status = 429, description = "too many failed attempts (Retry-After)")
    )
)]
pub(super) async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<SessionBody>, ApiError> {
    require(&[("email", &body.email), ("password", &body.password)])?;
    let email = body.email;
    state
        .throttle
        .attempt(&email, address)
        .await
        .map_err(|blocked| ApiError::too_many_attempts(blocked.retry_after_secs))?;
    let message = AuthenticateRequest {
        email: email.clone(),
        password: body.password,
        device: device(&headers),
    };
    match state
        .upstreams
        .users
        .clone()
        .authenticate(state.upstreams.as_gateway(message)?)
        .await
    {
        Ok(response) => {
            state.throttle.succeeded(&email, address).await;
            Ok(Json(session_body(response.into_inner())?))
        }
        Err(status) => {
            // A wrong password stays counted; anything else did not judge the password.
            let (reason, _) = spruce_platform::status::reason_of(&status);
            let judged = reason == Reason::InvalidCredentials;
            if !judged {
                state.throttle.undecided(&email, address).await;
            }
            Err(status.into())
        }
    }
}

/// Trades a refresh token for a new pair.
#[utoipa::path(
    post,
    path = "/v1/auth/refresh",
    tag = "auth",
    request_body = RefreshBody,
    responses(
        (
            status = 200,
            description = "a new pair; the old refresh token stops working",
            body = SessionBody
        ),
        (status = 401, description = "the refresh token is invalid, expired or revoked")
    )
)]
pub(super) async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<Json<SessionBody>, ApiError> {
    require(&[("refresh_token", &body.refresh_token)])?;
    let message = RefreshSessionRequest {
        refresh_token: body.refresh_token,
    };
    let response = state
        .upstreams
        .users
        .clone()
        .refresh_session(state.upstreams.as_gateway(message)?)
        .await?;
    Ok(Json(session_body(response.into_inner())?))
}

/// Revokes the session of the given refresh token.
#[utoipa::path(
    post,
    path = "/v1/auth/logout",
    tag = "auth",
    request_body = RefreshBody,
    security(("bearer" = [])),
    responses((status = 204, description = "the session is revoked"))
)]
pub(super) async fn logout(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<StatusCode, ApiError> {
    require(&[("refresh_token", &body.refresh_token)])?;
    let message = RevokeSessionRequest {
        refresh_token: body.refresh_token,
    };
    state
        .upstreams
        .users
        .clone()
        .revoke_session(user.request(message))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
