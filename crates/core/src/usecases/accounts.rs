//! Signup, login, sessions: the use cases behind `UserService`, each in one transaction.

use chrono::{Duration, Utc};
use spruce_platform::{
    identity::{Caller, Principal, Role},
    time::to_timestamp,
};
use spruce_proto::{
    core::v1::Role as ProtoRole,
    events::v1::{
        PasswordChanged, PasswordResetRequested, UserDeleted, UserRegistered,
        VerificationRequested, envelope::Payload,
    },
};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    authz::authenticated,
    domain::{
        secret::{CodeCheck, NewSecret, Purpose},
        session::{MAX_LIVE_SESSIONS, RefreshToken, TokenUse, hash_token},
        user::{Email, NewUser, Password, User},
    },
    error::CoreError,
    passwords::PasswordHashing,
    store::{
        export, secrets,
        sessions::{self, SessionRow},
        users,
    },
    tokens::TokenIssuer,
    usecases::{bookings::Bookings, cleaners},
};

/// How a user proves an email is theirs.
#[derive(Debug, Clone, Copy)]
pub enum EmailProof<'a> {
    /// The six digits, by the signed-in user.
    Code(&'a str),
    /// The link's token, by anyone holding it.
    Token(&'a str),
}

/// Draws a verification code and link for `user` (ending earlier ones) and records the
/// email that carries them; `first` for the one sent at signup.
async fn send_verification(
    transaction: &mut PgConnection,
    user: &User,
    first: bool,
) -> Result<(), CoreError> {
    let secret = NewSecret::generate(Purpose::VerifyEmail, Utc::now());
    secrets::replace(transaction, user.id, Purpose::VerifyEmail, &secret).await?;
    let event = spruce_bus::envelope(
        "user.verification_requested",
        user.id,
        1,
        Payload::VerificationRequested(VerificationRequested {
            user_id: user.id.to_string(),
            code: secret.code.clone().unwrap_or_default(),
            token: secret.token.clone(),
            expires_at: Some(to_timestamp(secret.expires_at)),
            first,
            full_name: user.full_name.clone(),
            role: user.role.as_str().to_owned(),
            role_kind: ProtoRole::from_wire_name(user.role.as_str()).into(),
        }),
    );
    spruce_bus::enqueue(transaction, &event).await?;
    Ok(())
}

/// A client's self-description cut to what a session list shows: 100 characters, no
/// control or format characters.
fn device_name(raw: &str) -> String {
    raw.chars()
        .filter(|character| !spruce_domain::text::is_forbidden_in_line(*character))
        .take(100)
        .collect::<String>()
        .trim()
        .to_owned()
}

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
        refresh_ttl: std::time::Duration,
        hashing: PasswordHashing,
        refused_password: Option<&'static str>,
    ) -> Self {
        Accounts {
            pool,
            issuer,
            refresh_ttl: Duration::from_std(refresh_ttl).unwrap_or(Duration::MAX),
            hashing,
            refused_password,
        }
    }

    /// Creates a user, records `user.registered` in the outbox and opens a session, all in
    /// one transaction.
    #[tracing::instrument(skip_all, fields(role = %new_user.role))]
    pub async fn register(
        &self,
        new_user: NewUser,
        device: &str,
    ) -> Result<(User, Session), CoreError> {
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
        let event = spruce_bus::envelope(
            "user.registered",
            user.id,
            1,
            Payload::UserRegistered(UserRegistered {
                user_id: user.id.to_string(),
                email: user.email.clone(),
                full_name: user.full_name.clone(),
                role: user.role.as_str().to_owned(),
                role_kind: ProtoRole::from_wire_name(user.role.as_str()).into(),
                timezone: user.timezone.clone(),
            }),
        );
        spruce_bus::enqueue(&mut transaction, &event).await?;
        // The first email is the verification email.
        send_verification(&mut transaction, &user, true).await?;
        let session = self
            .open_session(&mut transaction, &user, Uuid::new_v4(), device)
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
        device: &str,
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
            .open_session(&mut transaction, &user, Uuid::new_v4(), device)
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
            .open_session(&mut transaction, &user, stored.family_id, "")
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

    /// Confirms an email: the caller's own with the emailed `code`, or anyone's with the
    /// link's `token`; returns the user.
    ///
    /// # Errors
    /// A wrong, expired or used secret is a validation error naming the field; after
    /// [`MAX_CODE_TRIES`] wrong codes the code stops working ([`CoreError::TooManyTries`]).
    #[tracing::instrument(skip_all)]
    pub async fn verify_email(
        &self,
        principal: Option<&Principal>,
        proof: EmailProof<'_>,
    ) -> Result<User, CoreError> {
        let mut transaction = self.pool.begin().await?;
        let secret = match proof {
            EmailProof::Token(token) => {
                secrets::find_by_token(&mut transaction, Purpose::VerifyEmail, &hash_token(token))
                    .await?
                    .ok_or_else(|| {
                        CoreError::invalid("token", "is not a valid, unused verification link")
                    })?
            }
            EmailProof::Code(code) => {
                let caller = match principal {
                    Some(Principal::User(caller)) => *caller,
                    _ => return Err(CoreError::Unauthenticated),
                };
                let wrong = || CoreError::invalid("code", "is not the code we sent");
                let secret =
                    secrets::find_live(&mut transaction, caller.user_id, Purpose::VerifyEmail)
                        .await?
                        .ok_or_else(wrong)?;
                match secret.check_code(code, Utc::now()) {
                    CodeCheck::Right => secret,
                    CodeCheck::Wrong => {
                        secrets::count_failure(&mut transaction, secret.id).await?;
                        transaction.commit().await?;
                        return Err(wrong());
                    }
                    CodeCheck::Spent => return Err(CoreError::TooManyTries),
                }
            }
        };
        secrets::use_up(&mut transaction, secret.id).await?;
        let user = users::mark_email_verified(&mut transaction, secret.user_id)
            .await?
            .ok_or(CoreError::NotFound)?;
        if user.role == Role::Cleaner {
            // Search lists them from now on.
            cleaners::announce(&mut transaction, user.id).await?;
        }
        transaction.commit().await?;
        tracing::info!(user_id = %user.id, "email verified");
        Ok(user)
    }

    /// Sends the caller a new verification code and link; the earlier ones stop working.
    ///
    /// # Errors
    /// [`CoreError::AlreadyVerified`] when there is nothing to verify.
    pub async fn resend_verification(&self, caller: Option<Caller>) -> Result<(), CoreError> {
        let caller = authenticated(caller)?;
        let mut transaction = self.pool.begin().await?;
        let user = users::find_user(&mut transaction, caller.user_id)
            .await?
            .ok_or(CoreError::NotFound)?;
        if user.email_verified {
            return Err(CoreError::AlreadyVerified);
        }
        send_verification(&mut transaction, &user, false).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Emails a reset link to `email` when it belongs to a user. Answers at once and alike
    /// whether it does or not: the lookup and the email happen after the answer, so neither
    /// the answer nor its timing tells whether an account exists.
    ///
    /// # Errors
    /// A validation error when `email` is no email address at all (which says nothing of
    /// any account).
    pub fn request_password_reset(&self, email: &str) -> Result<(), CoreError> {
        let email = Email::parse(email).map_err(|message| CoreError::invalid("email", message))?;
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let sent = async {
                let mut transaction = pool.begin().await?;
                let Some((user, _)) =
                    users::find_credentials(&mut transaction, email.as_str()).await?
                else {
                    return Ok::<_, CoreError>(());
                };
                let secret = NewSecret::generate(Purpose::ResetPassword, Utc::now());
                secrets::replace(&mut transaction, user.id, Purpose::ResetPassword, &secret)
                    .await?;
                let event = spruce_bus::envelope(
                    "user.password_reset_requested",
                    user.id,
                    1,
                    Payload::PasswordResetRequested(PasswordResetRequested {
                        user_id: user.id.to_string(),
                        token: secret.token.clone(),
                        expires_at: Some(to_timestamp(secret.expires_at)),
                    }),
                );
                spruce_bus::enqueue(&mut transaction, &event).await?;
                transaction.commit().await?;
                tracing::info!(user_id = %user.id, "password reset requested");
                Ok(())
            };
            if let Err(error) = sent.await {
                tracing::warn!(%error, "cannot send a password reset");
            }
        });
        Ok(())
    }

    /// Sets a new password with a reset link's `token`, ends every session of the user and
    /// tells them by email.
    ///
    /// # Errors
    /// A wrong, expired or used token, or a password that breaks the rules, name their field.
    #[tracing::instrument(skip_all)]
    pub async fn reset_password(&self, token: &str, new_password: &str) -> Result<(), CoreError> {
        let password = self.acceptable_password(new_password)?;
        let password_hash = self.hashing.hash(password.expose().to_owned()).await?;
        let mut transaction = self.pool.begin().await?;
        let secret =
            secrets::find_by_token(&mut transaction, Purpose::ResetPassword, &hash_token(token))
                .await?
                .ok_or_else(|| CoreError::invalid("token", "is not a valid, unused reset link"))?;
        secrets::use_up(&mut transaction, secret.id).await?;
        self.replace_password(&mut transaction, secret.user_id, &password_hash, None)
            .await?;
        transaction.commit().await?;
        tracing::info!(user_id = %secret.user_id, "password reset");
        Ok(())
    }

    /// Sets the caller's new password, given the current one, and ends their other sessions.
    ///
    /// # Errors
    /// A wrong current password, or a new one that breaks the rules, name their field.
    #[tracing::instrument(skip_all)]
    pub async fn change_password(
        &self,
        caller: Option<Caller>,
        current_password: &str,
        new_password: &str,
    ) -> Result<(), CoreError> {
        let caller = authenticated(caller)?;
        let password = self.acceptable_password(new_password)?;
        self.check_password(caller.user_id, current_password, "current_password")
            .await?;
        let password_hash = self.hashing.hash(password.expose().to_owned()).await?;
        let mut transaction = self.pool.begin().await?;
        self.replace_password(
            &mut transaction,
            caller.user_id,
            &password_hash,
            caller.session_id,
        )
        .await?;
        transaction.commit().await?;
        tracing::info!(user_id = %caller.user_id, "password changed");
        Ok(())
    }

    /// Returns the caller's live sessions, the most recently used first, and which one the
    /// call came from.
    pub async fn sessions(
        &self,
        caller: Option<Caller>,
    ) -> Result<(Vec<SessionRow>, Option<Uuid>), CoreError> {
        let caller = authenticated(caller)?;
        let mut connection = self.pool.acquire().await?;
        let live = sessions::list_live(&mut connection, caller.user_id).await?;
        Ok((live, caller.session_id))
    }

    /// Ends one of the caller's sessions.
    ///
    /// # Errors
    /// [`CoreError::NotFound`] for a session that is not theirs, or is over.
    pub async fn end_session(
        &self,
        caller: Option<Caller>,
        session_id: Uuid,
    ) -> Result<(), CoreError> {
        let caller = authenticated(caller)?;
        let mut connection = self.pool.acquire().await?;
        if sessions::revoke_session(&mut connection, caller.user_id, session_id).await? {
            Ok(())
        } else {
            Err(CoreError::NotFound)
        }
    }

    /// Returns everything core holds about the caller, as one JSON document.
    pub async fn export(&self, caller: Option<Caller>) -> Result<String, CoreError> {
        let caller = authenticated(caller)?;
        let mut connection = self.pool.acquire().await?;
        export::user_document(&mut connection, caller.user_id).await
    }

    /// Deletes the caller's account, given their password: cancels their open bookings
    /// through `bookings` (payments released), erases their personal data (a tombstone
    /// stays for the bookings), ends every session and records `user.deleted`.
    ///
    /// # Errors
    /// A wrong password names its field; nothing is changed then.
    #[tracing::instrument(skip_all)]
    pub async fn delete(
        &self,
        caller: Option<Caller>,
        password: &str,
        bookings: &Bookings,
    ) -> Result<(), CoreError> {
        let caller = authenticated(caller)?;
        let user = {
            let mut connection = self.pool.acquire().await?;
            users::find_user(&mut connection, caller.user_id)
                .await?
                .ok_or(CoreError::NotFound)?
        };
        self.check_password(user.id, password, "password").await?;
        let cancelled = bookings.cancel_all_of(user.id).await?;
        let mut transaction = self.pool.begin().await?;
        export::erase_person(&mut transaction, user.id, &user.email, &user.full_name).await?;
        let event = spruce_bus::envelope(
            "user.deleted",
            user.id,
            1,
            Payload::UserDeleted(UserDeleted {
                user_id: user.id.to_string(),
                role: user.role.as_str().to_owned(),
                role_kind: ProtoRole::from_wire_name(user.role.as_str()).into(),
            }),
        );
        spruce_bus::enqueue(&mut transaction, &event).await?;
        transaction.commit().await?;
        tracing::info!(user_id = %user.id, cancelled, "account deleted");
        Ok(())
    }

    /// Checks that `password` is `user_id`'s, naming `field` when it is not. No connection
    /// is held while the hash is checked.
    async fn check_password(
        &self,
        user_id: Uuid,
        password: &str,
        field: &str,
    ) -> Result<(), CoreError> {
        let stored = {
            let mut connection = self.pool.acquire().await?;
            users::password_hash(&mut connection, user_id).await?
        };
        if self.hashing.verify(password.to_owned(), stored).await? {
            Ok(())
        } else {
            Err(CoreError::invalid(field, "is not your password"))
        }
    }

    /// Checks a new password against the rules (and the published development password).
    fn acceptable_password(&self, raw: &str) -> Result<Password, CoreError> {
        let password =
            Password::parse(raw).map_err(|message| CoreError::invalid("new_password", message))?;
        if self.refused_password == Some(password.expose()) {
            return Err(CoreError::invalid(
                "new_password",
                "is the published development password; choose another",
            ));
        }
        Ok(password)
    }

    /// Stores a new password hash, ends every session but `keep`, and records
    /// `user.password_changed` so the user is told.
    async fn replace_password(
        &self,
        transaction: &mut PgConnection,
        user_id: Uuid,
        password_hash: &str,
        keep: Option<Uuid>,
    ) -> Result<(), CoreError> {
        users::set_password_hash(transaction, user_id, password_hash).await?;
        sessions::revoke_all_but(transaction, user_id, keep).await?;
        let event = spruce_bus::envelope(
            "user.password_changed",
            user_id,
            1,
            Payload::PasswordChanged(PasswordChanged {
                user_id: user_id.to_string(),
            }),
        );
        spruce_bus::enqueue(transaction, &event).await?;
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

    /// Opens a session in `family_id` (a new one, or the next token of one being rotated,
    /// which keeps its first `device`).
    async fn open_session(
        &self,
        connection: &mut PgConnection,
        user: &User,
        family_id: Uuid,
        device: &str,
    ) -> Result<Session, CoreError> {
        let refresh = RefreshToken::generate();
        sessions::insert_token(
            connection,
            family_id,
            user.id,
            &refresh.hash,
            Utc::now() + self.refresh_ttl,
            &device_name(device),
        )
        .await?;
        // A new session beyond the limit ends the one used longest ago.
        sessions::revoke_beyond(connection, user.id, MAX_LIVE_SESSIONS).await?;
        Ok(Session {
            access_token: self.issuer.issue(user.id, user.role, family_id)?,
            refresh_token: refresh.secret,
            expires_in: self.issuer.ttl_secs(),
        })
    }
}
