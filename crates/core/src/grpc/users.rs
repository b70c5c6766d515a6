//! `spruce.core.v1.UserService`.

use spruce_platform::identity::{Caller, Principal, Role};
use spruce_platform::time::to_timestamp;
use spruce_proto::core::v1::{
    self as wire, AuthResponse, AuthenticateRequest, ChangePasswordRequest, ChangePasswordResponse,
    DeleteUserRequest, DeleteUserResponse, EndSessionRequest, EndSessionResponse,
    ExportUserRequest, ExportUserResponse, GetUserRequest, ListSessionsRequest,
    ListSessionsResponse, RefreshSessionRequest, RegisterRequest, RequestPasswordResetRequest,
    RequestPasswordResetResponse, ResendVerificationRequest, ResendVerificationResponse,
    ResetPasswordRequest, ResetPasswordResponse, RevokeSessionRequest, RevokeSessionResponse,
    SessionInfo, VerifyEmailRequest, user_service_server::UserService,
};
use tonic::{Request, Response, Status};

use crate::{
    domain::user::{NewUser, User},
    error::CoreError,
    usecases::{
        accounts::{Accounts, EmailProof, Session},
        bookings::Bookings,
    },
};

/// The gRPC face of [`Accounts`].
pub struct UserApi {
    accounts: Accounts,
    /// For cancelling a leaving user's bookings.
    bookings: Bookings,
}

impl UserApi {
    /// Wraps the account use cases, with the booking ones a deletion needs.
    pub fn new(accounts: Accounts, bookings: Bookings) -> Self {
        UserApi { accounts, bookings }
    }
}

fn user_to_wire(user: User) -> wire::User {
    wire::User {
        id: user.id.to_string(),
        email: user.email,
        full_name: user.full_name,
        role: wire::Role::from(user.role).into(),
        created_at: Some(to_timestamp(user.created_at)),
        timezone: user.timezone,
        email_verified: user.email_verified,
    }
}

fn auth_response((user, session): (User, Session)) -> Response<AuthResponse> {
    Response::new(AuthResponse {
        user: Some(user_to_wire(user)),
        session: Some(wire::Session {
            access_token: session.access_token,
            refresh_token: session.refresh_token,
            expires_in: session.expires_in,
        }),
    })
}

#[tonic::async_trait]
impl UserService for UserApi {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<AuthResponse>, Status> {
        let request = request.into_inner();
        let new_user = NewUser::parse(
            &request.email,
            &request.password,
            &request.full_name,
            Role::from_proto(request.role),
            &request.timezone,
        )
        .map_err(CoreError::Validation)?;
        Ok(auth_response(
            self.accounts.register(new_user, &request.device).await?,
        ))
    }

    async fn authenticate(
        &self,
        request: Request<AuthenticateRequest>,
    ) -> Result<Response<AuthResponse>, Status> {
        let request = request.into_inner();
        Ok(auth_response(
            self.accounts
                .authenticate(&request.email, &request.password, &request.device)
                .await?,
        ))
    }

    async fn get_user(
        &self,
        request: Request<GetUserRequest>,
    ) -> Result<Response<wire::User>, Status> {
        let user_id = request
            .get_ref()
            .user_id
            .parse()
            .map_err(|_| CoreError::invalid("user_id", "must be a UUID"))?;
        let user = self
            .accounts
            .get_user(Principal::of(&request), user_id)
            .await?;
        Ok(Response::new(user_to_wire(user)))
    }

    async fn refresh_session(
        &self,
        request: Request<RefreshSessionRequest>,
    ) -> Result<Response<AuthResponse>, Status> {
        Ok(auth_response(
            self.accounts
                .refresh(&request.get_ref().refresh_token)
                .await?,
        ))
    }

    async fn revoke_session(
        &self,
        request: Request<RevokeSessionRequest>,
    ) -> Result<Response<RevokeSessionResponse>, Status> {
        let caller = Caller::of(&request);
        self.accounts
            .revoke(caller, &request.get_ref().refresh_token)
            .await?;
        Ok(Response::new(RevokeSessionResponse {}))
    }

    async fn verify_email(
        &self,
        request: Request<VerifyEmailRequest>,
    ) -> Result<Response<wire::User>, Status> {
        let wire = request.get_ref();
        let proof = match (wire.code.trim(), wire.token.trim()) {
            ("", "") => {
                return Err(CoreError::invalid("code", "is required (or the link's token)").into());
            }
            (code, "") => EmailProof::Code(code),
            ("", token) => EmailProof::Token(token),
            _ => {
                return Err(
                    CoreError::invalid("token", "give the code or the token, not both").into(),
                );
            }
        };
        let user = self
            .accounts
            .verify_email(Principal::of(&request), proof)
            .await?;
        Ok(Response::new(user_to_wire(user)))
    }

    async fn resend_verification(
        &self,
        request: Request<ResendVerificationRequest>,
    ) -> Result<Response<ResendVerificationResponse>, Status> {
        self.accounts
            .resend_verification(Caller::of(&request))
            .await?;
        Ok(Response::new(ResendVerificationResponse {}))
    }

    async fn request_password_reset(
        &self,
        request: Request<RequestPasswordResetRequest>,
    ) -> Result<Response<RequestPasswordResetResponse>, Status> {
        self.accounts
            .request_password_reset(&request.get_ref().email)?;
        Ok(Response::new(RequestPasswordResetResponse {}))
    }

    async fn reset_password(
        &self,
        request: Request<ResetPasswordRequest>,
    ) -> Result<Response<ResetPasswordResponse>, Status> {
        let wire = request.get_ref();
        self.accounts
            .reset_password(&wire.token, &wire.new_password)
            .await?;
        Ok(Response::new(ResetPasswordResponse {}))
    }

    async fn change_password(
        &self,
        request: Request<ChangePasswordRequest>,
    ) -> Result<Response<ChangePasswordResponse>, Status> {
        let wire = request.get_ref();
        self.accounts
            .change_password(
                Caller::of(&request),
                &wire.current_password,
                &wire.new_password,
            )
            .await?;
        Ok(Response::new(ChangePasswordResponse {}))
    }

    async fn list_sessions(
        &self,
        request: Request<ListSessionsRequest>,
    ) -> Result<Response<ListSessionsResponse>, Status> {
        let (sessions, current) = self.accounts.sessions(Caller::of(&request)).await?;
        Ok(Response::new(ListSessionsResponse {
            sessions: sessions
                .into_iter()
                .map(|session| SessionInfo {
                    id: session.id.to_string(),
                    current: Some(session.id) == current,
                    device: session.device,
                    created_at: Some(to_timestamp(session.created_at)),
                    last_used_at: Some(to_timestamp(session.last_used_at)),
                })
                .collect(),
        }))
    }

    async fn end_session(
        &self,
        request: Request<EndSessionRequest>,
    ) -> Result<Response<EndSessionResponse>, Status> {
        // Not a session id is no session of theirs.
        let session_id = request
            .get_ref()
            .session_id
            .parse()
            .map_err(|_| CoreError::NotFound)?;
        self.accounts
            .end_session(Caller::of(&request), session_id)
            .await?;
        Ok(Response::new(EndSessionResponse {}))
    }

    async fn export_user(
        &self,
        request: Request<ExportUserRequest>,
    ) -> Result<Response<ExportUserResponse>, Status> {
        let json = self.accounts.export(Caller::of(&request)).await?;
        Ok(Response::new(ExportUserResponse { json }))
    }

    async fn delete_user(
        &self,
        request: Request<DeleteUserRequest>,
    ) -> Result<Response<DeleteUserResponse>, Status> {
        self.accounts
            .delete(
                Caller::of(&request),
                &request.get_ref().password,
                &self.bookings,
            )
            .await?;
        Ok(Response::new(DeleteUserResponse {}))
    }
}
