//! What users see of their notifications, and their device for push.

use spruce_domain::reason::FieldError;
use spruce_platform::{
    identity::Caller,
    paging::{Cursor, split_page},
};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    domain::notifications::{
        Notification, SECRET_KINDS, SENT_BY_EMAIL, carries_secret, plausible_device_token,
    },
    error::SchedulerError,
    store::notifications as store,
};

/// Users' notifications and devices.
pub struct Notifications {
    pool: PgPool,
}

impl Notifications {
    /// Serves notifications from `pool`.
    pub fn new(pool: PgPool) -> Self {
        Notifications { pool }
    }

    /// A page of `user_id`'s notifications, newest first, and where the next page starts.
    /// Someone else's notifications look like none; a body that carries a secret reads
    /// [`SENT_BY_EMAIL`].
    ///
    /// # Errors
    /// Unauthenticated, or a database failure.
    pub async fn list(
        &self,
        caller: Option<Caller>,
        user_id: Uuid,
        after: Option<Cursor>,
        limit: i64,
    ) -> Result<(Vec<Notification>, Option<Cursor>), SchedulerError> {
        let caller = caller.ok_or(SchedulerError::Unauthenticated)?;
        if !caller.may_access(user_id) {
            return Ok((Vec::new(), None));
        }
        let mut connection = self.pool.acquire().await?;
        // One extra row tells whether another page exists.
        let rows = store::list_notifications(&mut connection, user_id, after, limit + 1).await?;
        let (page, next) = split_page(rows, limit, |row| Cursor {
            created_at: row.created_at,
            id: row.id,
        });
        let shown = page
            .into_iter()
            .map(|notification| {
                if carries_secret(&notification.kind) {
                    Notification {
                        body: SENT_BY_EMAIL.to_owned(),
                        ..notification
                    }
                } else {
                    notification
                }
            })
            .collect();
        Ok((shown, next))
    }

    /// Registers the caller's device for push (an empty token removes it).
    ///
    /// # Errors
    /// Unauthenticated, a validation error for an implausible token, not found before the
    /// scheduler has heard of the user, or a database failure.
    pub async fn set_device(
        &self,
        caller: Option<Caller>,
        token: &str,
    ) -> Result<(), SchedulerError> {
        let caller = caller.ok_or(SchedulerError::Unauthenticated)?;
        if !plausible_device_token(token) {
            return Err(SchedulerError::Validation(FieldError::new(
                "device_token",
                "must be at most 4096 printable ASCII characters",
            )));
        }
        let token = (!token.is_empty()).then_some(token);
        let mut connection = self.pool.acquire().await?;
        if store::set_device(&mut connection, caller.user_id, token).await? {
            Ok(())
        } else {
            Err(SchedulerError::NotFound("user"))
        }
    }

    /// Everything held about the caller, as one JSON object (secrets redacted).
    ///
    /// # Errors
    /// Unauthenticated, or a database failure.
    pub async fn export(&self, caller: Option<Caller>) -> Result<String, SchedulerError> {
        let caller = caller.ok_or(SchedulerError::Unauthenticated)?;
        let mut connection = self.pool.acquire().await?;
        Ok(store::export(&mut connection, caller.user_id, SECRET_KINDS, SENT_BY_EMAIL).await?)
    }
}
