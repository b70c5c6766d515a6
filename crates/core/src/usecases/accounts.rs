//! Signup, login, sessions: the use cases behind `UserService`, each in one transaction.

use chrono::{Duration, Utc};
use spruce_platform::{
    bus,
    identity::{Caller, Principal},
};
use spruce_proto::events::v1::{UserRegistered, envelope::Payload};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    authz::authenticated,
    domain::{
        session::{MAX_LIVE_SESSIONS, RefreshToken, TokenUse, hash_token},
        user::{Email, NewUser, User},
    },
    error::CoreError,
    passwords::PasswordHashing,
    store::{sessions, users},
    tokens::TokenIssuer,
};

/// The tokens handed to a client after signup, login or refresh.
#[derive(Debug, Clone)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
}

/// The account use cases.
#[derive(Clone)]
pub struct Accounts {
    pool: PgPool,
    issuer: TokenIssuer,
    refresh_ttl: Duration,
    hashing: PasswordHashing,
    /// The seeded accounts' published password, where it must not open anything.
    refused_password: Option<&'static str>,
}

impl Accounts {
    /// Creates the use cases over `pool`.
    pub fn new(
        pool: PgPool,
        issuer: TokenIssuer,
        refresh_ttl_days: i64,
        hashing: PasswordHashing,
        refused_password: Option<&'static str>,
    ) -> Self {
        Accounts {
            pool,
            issuer,
            refresh_ttl: Duration::days(refresh_ttl_days),
            hashing,
            refused_password,
        }
    }

    /// Creates a user, records `user.registered` in the outbox and opens a session, all in
    /// one transaction.
    #[tracing::instrument(skip_all, fields(role = %new_user.role))]
    pub async fn register(&self, new_user: NewUser) -> Result<(User, Session), CoreError> {
        let password = new_user.password.clone();
        if self.refused_password == Some(password.expose()) {
            return Err(CoreError::invalid(
                "password",
                "is the published development password; choose another",
            ));
        }
        let password_hash = self.hashing.hash(password.expose().to_owned()).await?;
        let mut transaction = self.pool.begin().await?;
        let user = users::insert_user(
            &mut transaction,
            Uuid::new_v4(),
            new_user.email.as_str(),
            &password_hash,
            new_user.full_name.as_str(),
            new_user.role,
            &new_user.timezone,
        )
        .await?;
        let event = bus::envelope(
            "user.registered",
            user.id,
            1,
            Payload::UserRegistered(UserRegistered {
                user_id: user.id.to_string(),
                email: user.email.clone(),
                full_name: user.full_name.clone(),
                role: user.role.as_str().to_owned(),
                timezone: user.timezone.clone(),
            }),
        );
        bus::enqueue(&mut transaction, &event).await?;
        let session = self
            .open_session(&mut transaction, &user, Uuid::new_v4())
            .await?;
        transaction.commit().await?;
        tracing::info!(user_id = %user.id, "user registered");
        Ok((user, session))
    }

    /// Checks an email and password and opens a session.
    #[tracing::instrument(skip_all)]
    pub async fn authenticate(
        &self,
        email: &str,
        password: &str,
    ) -> Result<(User, Session), CoreError> {
        // A login names an account, so its email is read as signups store it; one that could
        // never have been stored (control characters) is refused before the database.
        let email = Email::parse(email).map_err(|message| CoreError::invalid("email", message))?;
        // Seeded data copied where it does not belong opens nothing: the password is public.
        if self.refused_password == Some(password) {
            return Err(CoreError::InvalidCredentials);
        }
        let mut connection = self.pool.acquire().await?;
        let found = users::find_credentials(&mut connection, email.as_str()).await?;
        let (user, hash) = match found {
            Some((user, hash)) => (Some(user), Some(hash)),
            None => (None, None),
        };
        let verified = self.hashing.verify(password.to_owned(), hash).await?;
        let Some(user) = user.filter(|_| verified) else {
            return Err(CoreError::InvalidCredentials);
        };
        let mut transaction = self.pool.begin().await?;
        let session = self
            .open_session(&mut transaction, &user, Uuid::new_v4())
            .await?;
        transaction.commit().await?;
        Ok((user, session))
    }

    /// Returns a user the caller may see.
    pub async fn get_user(
        &self,
        principal: Option<&Principal>,
        user_id: Uuid,
    ) -> Result<User, CoreError> {
        let allowed = match principal {
            None => return Err(CoreError::Unauthenticated),
            Some(Principal::User(caller)) => caller.may_access(user_id),
            // Notifications: the scheduler asks where to send one for a user whose
            // user.registered it never saw (seeded, or registered before it subscribed).
            Some(Principal::Service(name)) => &**name == "scheduler",
        };
        // Another user's profile answers "not found", revealing nothing.
        if !allowed {
            return Err(CoreError::NotFound);
        }
        let mut connection = self.pool.acquire().await?;
        users::find_user(&mut connection, user_id)
            .await?
            .ok_or(CoreError::NotFound)
    }

    /// Rotates a refresh token. Presenting an already rotated token revokes its family.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, refresh_token: &str) -> Result<(User, Session), CoreError> {
        let mut transaction = self.pool.begin().await?;
        let stored = sessions::find_token_for_update(&mut transaction, &hash_token(refresh_token))
            .await?
            .ok_or(CoreError::InvalidRefreshToken)?;
        match stored.judge(Utc::now()) {
            TokenUse::Refuse => return Err(CoreError::InvalidRefreshToken),
            TokenUse::Reuse => {
                tracing::warn!(user_id = %stored.user_id, family_id = %stored.family_id, "rotated refresh token reused, revoking its family");
                sessions::revoke_family(&mut transaction, stored.family_id).await?;
                transaction.commit().await?;
                return Err(CoreError::InvalidRefreshToken);
            }
            TokenUse::Rotate => {}
        }
        let user = users::find_user(&mut transaction, stored.user_id)
            .await?
            .ok_or(CoreError::InvalidRefreshToken)?;
        sessions::mark_rotated(&mut transaction, stored.id).await?;
        let session = self
            .open_session(&mut transaction, &user, stored.family_id)
            .await?;
        transaction.commit().await?;
        Ok((user, session))
    }

    /// Revokes the session a refresh token belongs to. Unknown tokens and other users'
    /// tokens are ignored, so logging out twice is harmless and reveals nothing.
    #[tracing::instrument(skip_all)]
    pub async fn revoke(
        &self,
        caller: Option<Caller>,
        refresh_token: &str,
    ) -> Result<(), CoreError> {
        let caller = authenticated(caller)?;
        let mut transaction = self.pool.begin().await?;
        let stored =
            sessions::find_token_for_update(&mut transaction, &hash_token(refresh_token)).await?;
        if let Some(stored) = stored.filter(|stored| caller.may_access(stored.user_id)) {
            sessions::revoke_family(&mut transaction, stored.family_id).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Deletes the refresh tokens that expired over a day ago, a batch at a time, every
    /// `every` until `shutdown`: they open nothing, and would otherwise pile up forever.
    pub async fn prune_expired_sessions(
        self,
        every: std::time::Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        const BATCH: i64 = 1_000;
        loop {
            let before = Utc::now() - Duration::days(1);
            loop {
                let deleted = async {
                    let mut connection = self.pool.acquire().await?;
                    sessions::delete_expired(&mut connection, before, BATCH).await
                }
                .await;
                match deleted {
                    Ok(count) if count > 0 => {
                        tracing::info!(count, "expired refresh tokens deleted");
                        if count < u64::try_from(BATCH).unwrap_or(0) {
                            break;
                        }
                    }
                    Ok(_) => break,
                    Err(error) => {
                        tracing::warn!(%error, "cannot delete expired refresh tokens");
                        break;
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    async fn open_session(
        &self,
        connection: &mut PgConnection,
        user: &User,
        family_id: Uuid,
    ) -> Result<Session, CoreError> {
        let refresh = RefreshToken::generate();
        sessions::insert_token(
            connection,
            family_id,
            user.id,
            &refresh.hash,
            Utc::now() + self.refresh_ttl,
        )
        .await?;
        // A new session beyond the limit ends the one used longest ago.
        sessions::revoke_beyond(connection, user.id, MAX_LIVE_SESSIONS).await?;
        Ok(Session {
            access_token: self.issuer.issue(user.id, user.role)?,
            refresh_token: refresh.secret,
            expires_in: self.issuer.ttl_secs(),
        })
    }
}
