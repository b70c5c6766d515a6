//! Login throttling in Redis: after `max_failures` wrong passwords for one email within
//! the window, further attempts get 429 until the window ends. A successful login clears
//! the count. When Redis is unreachable the throttle lets logins through (and says so in
//! the logs) rather than locking everyone out.

use std::time::Duration;

use redis::{AsyncCommands as _, Client, aio::ConnectionManager, aio::ConnectionManagerConfig};
use secrecy::ExposeSecret as _;
use sha2::{Digest as _, Sha256};

use crate::settings::{LoginThrottleSettings, RedisSettings};

/// Counts failed logins per email.
#[derive(Clone)]
pub struct LoginThrottle {
    redis: ConnectionManager,
    prefix: String,
    max_failures: i64,
    window_secs: i64,
}

/// Logins for this email are blocked for this many more seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked {
    pub retry_after_secs: u64,
}

impl LoginThrottle {
    /// Prepares a lazily connecting, self-reconnecting Redis client.
    ///
    /// # Errors
    /// Fails when the Redis URL is invalid.
    pub fn new(redis: &RedisSettings, limits: &LoginThrottleSettings) -> anyhow::Result<Self> {
        let client = Client::open(redis.url.expose_secret())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(redis.timeout_ms)))
            .set_response_timeout(Some(Duration::from_millis(redis.timeout_ms)))
            .set_number_of_retries(1);
        Ok(LoginThrottle {
            redis: ConnectionManager::new_lazy_with_config(client, config)?,
            prefix: redis.key_prefix.clone(),
            max_failures: i64::from(limits.max_failures),
            window_secs: i64::from(limits.window_secs),
        })
    }

    fn key(&self, email: &str) -> String {
        // Hashed, so the cache holds no email addresses.
        let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
        let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
        format!("{}login-failures:{hex}", self.prefix)
    }

    /// Returns whether `email` may try to log in now.
    ///
    /// # Errors
    /// [`Blocked`] with the seconds left when it has failed too often.
    pub async fn check(&self, email: &str) -> Result<(), Blocked> {
        let key = self.key(email);
        let mut redis = self.redis.clone();
        let state: redis::RedisResult<(Option<i64>, i64)> = redis::pipe()
            .get(&key)
            .ttl(&key)
            .query_async(&mut redis)
            .await;
        match state {
            Ok((Some(failures), ttl)) if failures >= self.max_failures => Err(Blocked {
                retry_after_secs: u64::try_from(ttl.max(1)).unwrap_or(1),
            }),
            Ok(_) => Ok(()),
            Err(error) => {
                tracing::warn!(%error, "login throttle unavailable, letting the attempt through");
                Ok(())
            }
        }
    }

    /// Counts a failed login for `email`; the window starts with the first failure.
    pub async fn record_failure(&self, email: &str) {
        let key = self.key(email);
        let mut redis = self.redis.clone();
        let counted: redis::RedisResult<()> = redis::pipe()
            .atomic()
            .incr(&key, 1)
            .ignore()
            .cmd("EXPIRE")
            .arg(&key)
            .arg(self.window_secs)
            .arg("NX")
            .ignore()
            .query_async(&mut redis)
            .await;
        if let Err(error) = counted {
            tracing::warn!(%error, "cannot count a failed login");
        }
    }

    /// Clears the failures of `email` after a successful login.
    pub async fn reset(&self, email: &str) {
        let mut redis = self.redis.clone();
        let cleared: redis::RedisResult<()> = redis.del(self.key(email)).await;
        if let Err(error) = cleared {
            tracing::warn!(%error, "cannot clear failed logins");
        }
    }
}
