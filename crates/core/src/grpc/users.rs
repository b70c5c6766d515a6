//! `spruce.core.v1.UserService`.

use spruce_platform::identity::{Caller, Principal, Role};
use spruce_platform::time::to_timestamp;
use spruce_proto::core::v1::{
    self as wire, AuthResponse, AuthenticateRequest, GetUserRequest, RefreshSessionRequest,
    RegisterRequest, RevokeSessionRequest, RevokeSessionResponse, user_service_server::UserService,
};
use tonic::{Request, Response, Status};

use crate::{
    domain::user::{NewUser, User},
    error::CoreError,
    usecases::accounts::{Accounts, Session},
};

/// The gRPC face of [`Accounts`].
pub struct UserApi {
    accounts: Accounts,
}

impl UserApi {
    /// Wraps the account use cases.
    pub fn new(accounts: Accounts) -> Self {
        UserApi { accounts }
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
        Ok(auth_response(self.accounts.register(new_user).await?))
    }

    async fn authenticate(
        &self,
        request: Request<AuthenticateRequest>,
    ) -> Result<Response<AuthResponse>, Status> {
        let request = request.into_inner();
        Ok(auth_response(
            self.accounts
                .authenticate(&request.email, &request.password)
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
}
