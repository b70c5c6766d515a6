//! Login throttling in Redis: after too many wrong passwords for one email, or from one
//! client address, within the window, further attempts get 429 until the window ends. A
//! successful login clears the email's count (not the address's). When Redis is unreachable
//! the throttle lets logins through (and says so in the logs) rather than locking everyone
//! out.

use std::{net::IpAddr, time::Duration};

use redis::{AsyncCommands as _, Client, aio::ConnectionManager, aio::ConnectionManagerConfig};
use secrecy::ExposeSecret as _;
use sha2::{Digest as _, Sha256};

use crate::settings::{LoginThrottleSettings, RedisSettings};

/// Counts failed logins per email and per client address.
#[derive(Clone)]
pub struct LoginThrottle {
    redis: ConnectionManager,
    prefix: String,
    max_per_email: i64,
    max_per_address: i64,
    window_secs: i64,
}

/// Logins are blocked for this many more seconds.
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
            max_per_email: i64::from(limits.max_failures),
            max_per_address: i64::from(limits.max_failures_per_address),
            window_secs: i64::from(limits.window_secs),
        })
    }

    fn email_key(&self, email: &str) -> String {
        // Hashed, so the cache holds no email addresses.
        let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
        let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
        format!("{}login-failures:email:{hex}", self.prefix)
    }

    fn address_key(&self, address: IpAddr) -> String {
        format!("{}login-failures:address:{address}", self.prefix)
    }

    /// Returns whether a login for `email` from `address` may be tried now.
    ///
    /// # Errors
    /// [`Blocked`] with the seconds left when either has failed too often.
    pub async fn check(&self, email: &str, address: IpAddr) -> Result<(), Blocked> {
        let (email_key, address_key) = (self.email_key(email), self.address_key(address));
        let mut redis = self.redis.clone();
        let state: redis::RedisResult<(Option<i64>, i64, Option<i64>, i64)> = redis::pipe()
            .get(&email_key)
            .ttl(&email_key)
            .get(&address_key)
            .ttl(&address_key)
            .query_async(&mut redis)
            .await;
        let (email_failures, email_ttl, address_failures, address_ttl) = match state {
            Ok(state) => state,
            Err(error) => {
                tracing::warn!(%error, "login throttle unavailable, letting the attempt through");
                return Ok(());
            }
        };
        let blocked_for = [
            (email_failures.unwrap_or(0) >= self.max_per_email).then_some(email_ttl),
            (address_failures.unwrap_or(0) >= self.max_per_address).then_some(address_ttl),
        ]
        .into_iter()
        .flatten()
        .max();
        match blocked_for {
            Some(ttl) => Err(Blocked {
                retry_after_secs: u64::try_from(ttl.max(1)).unwrap_or(1),
            }),
            None => Ok(()),
        }
    }

    /// Counts a failed login for `email` and for `address`; each window starts with its
    /// first failure.
    pub async fn record_failure(&self, email: &str, address: IpAddr) {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for key in [self.email_key(email), self.address_key(address)] {
            pipe.incr(&key, 1)
                .ignore()
                .cmd("EXPIRE")
                .arg(&key)
                .arg(self.window_secs)
                .arg("NX")
                .ignore();
        }
        let mut redis = self.redis.clone();
        let counted: redis::RedisResult<()> = pipe.query_async(&mut redis).await;
        if let Err(error) = counted {
            tracing::warn!(%error, "cannot count a failed login");
        }
    }

    /// Clears the failures of `email` after a successful login.
    pub async fn reset(&self, email: &str) {
        let mut redis = self.redis.clone();
        let cleared: redis::RedisResult<()> = redis.del(self.email_key(email)).await;
        if let Err(error) = cleared {
            tracing::warn!(%error, "cannot clear failed logins");
        }
    }
}
