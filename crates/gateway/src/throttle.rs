//! Throttling in Redis, counted before the work it guards, so concurrent requests cannot
//! slip past a limit:
//! - logins: after too many wrong passwords for one email, or from one client address,
//!   within the window, further attempts get 429 until the window ends. A successful login
//!   clears the email's count and is taken back from the address's;
//! - signups: too many from one client address within the window get 429;
//! - searches and recommendations: too many from one user within the window get 429;
//! - verification emails asked for again, and password reset requests (per email and per
//!   client address): a few an hour;
//! - declined payments: after too many for one customer, or from one client address, within
//!   the window, further booking attempts get 429 (card testing). An attempt is counted
//!   before it is made and taken back unless its card was declined.
//!
//! When Redis is unreachable the throttle lets requests through (and says so in the logs)
//! rather than locking everyone out.

use std::{net::IpAddr, time::Duration};

use redis::aio::ConnectionManager;
use sha2::{Digest as _, Sha256};
use spruce_domain::{email::normalize_email, text::lower_hex};

use uuid::Uuid;

use crate::settings::{
    PasswordResetThrottleSettings, PaymentThrottleSettings, SearchThrottleSettings, Settings,
};

/// Counts logins per email and per client address, and signups per client address.
#[derive(Clone)]
pub struct Throttle {
    redis: ConnectionManager,
    prefix: String,
    max_per_email: i64,
    max_per_address: i64,
    window_secs: i64,
    max_signups_per_address: i64,
    signup_window_secs: i64,
    payments: PaymentThrottleSettings,
    searches: SearchThrottleSettings,
    resets: PasswordResetThrottleSettings,
}

/// Requests are blocked for this many more seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked {
    pub retry_after_secs: u64,
}

/// A window's whole seconds, as Redis counts them.
fn seconds(window: Duration) -> i64 {
    i64::try_from(window.as_secs()).unwrap_or(i64::MAX)
}

impl Throttle {
    /// Prepares a lazily connecting, self-reconnecting Redis client with the gateway's
    /// limits.
    ///
    /// # Errors
    /// Fails when the Redis URL is invalid.
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let (logins, signups) = (&settings.login_throttle, &settings.signup_throttle);
        Ok(Throttle {
            redis: spruce_platform::redis::connect(&settings.redis)?,
            prefix: settings.redis.key_prefix.clone(),
            max_per_email: i64::from(logins.max_failures),
            max_per_address: i64::from(logins.max_failures_per_address),
            window_secs: seconds(logins.window),
            max_signups_per_address: i64::from(signups.max_per_address),
            signup_window_secs: seconds(signups.window),
            payments: settings.payment_throttle.clone(),
            searches: settings.search_throttle.clone(),
            resets: settings.password_reset_throttle.clone(),
        })
    }

    /// The key of a count about `email` named `what`: the email hashed, so that the cache
    /// holds no email addresses.
    fn email_key(&self, what: &str, email: &str) -> String {
        let digest = Sha256::digest(normalize_email(email).as_bytes());
        format!("{}{what}:email:{}", self.prefix, lower_hex(&digest))
    }

    fn address_key(&self, address: IpAddr) -> String {
        format!("{}login-failures:address:{address}", self.prefix)
    }

    /// Counts a login attempt for `email` from `address` before the password is checked,
    /// and returns whether it may go ahead: so a burst of concurrent attempts gets at most
    /// the limit through, however fast it comes. Report the outcome with
    /// [`Throttle::succeeded`] or [`Throttle::undecided`]; a wrong password needs
    /// nothing more (it stays counted).
    ///
    /// # Errors
    /// [`Blocked`] with the seconds left when either count is over its limit.
    pub async fn attempt(&self, email: &str, address: IpAddr) -> Result<(), Blocked> {
        self.count(
            &[
                (
                    self.email_key("login-failures", email),
                    self.max_per_email,
                    self.window_secs,
                ),
                (
                    self.address_key(address),
                    self.max_per_address,
                    self.window_secs,
                ),
            ],
            "login",
        )
        .await
    }

    /// Counts a signup from `address` and returns whether it may go ahead.
    ///
    /// # Errors
    /// [`Blocked`] with the seconds left when the address is over its limit.
    pub async fn signup_attempt(&self, address: IpAddr) -> Result<(), Blocked> {
        let key = format!("{}signups:address:{address}", self.prefix);
        self.count(
            &[(key, self.max_signups_per_address, self.signup_window_secs)],
            "signup",
        )
        .await
    }

    /// Counts a search (or recommendation request) by `user_id` and returns whether it may
    /// go ahead.
    ///
    /// # Errors
    /// [`Blocked`] with the seconds left when the user is over the limit.
    pub async fn search_attempt(&self, user_id: Uuid) -> Result<(), Blocked> {
        let key = format!("{}searches:user:{user_id}", self.prefix);
        let (limit, window) = (
            i64::from(self.searches.max_per_user),
            seconds(self.searches.window),
        );
        self.count(&[(key, limit, window)], "search").await
    }

    /// Counts a request for another verification email by `user_id`: 5 an hour.
    ///
    /// # Errors
    /// [`Blocked`] with the seconds left when over the limit.
    pub async fn verification_resend(&self, user_id: Uuid) -> Result<(), Blocked> {
        let key = format!("{}verification-resends:user:{user_id}", self.prefix);
        self.count(&[(key, 5, 3_600)], "verification resend").await
    }

    /// Counts a password reset request for `email` (known or not, alike) from `address`.
    ///
    /// # Errors
    /// [`Blocked`] with the seconds left when either is over its limit.
    pub async fn password_reset(&self, email: &str, address: IpAddr) -> Result<(), Blocked> {
        let by_email = self.email_key("password-resets", email);
        let by_address = format!("{}password-resets:address:{address}", self.prefix);
        let window = seconds(self.resets.window);
        self.count(
            &[
                (by_email, i64::from(self.resets.max_per_email), window),
                (by_address, i64::from(self.resets.max_per_address), window),
            ],
            "password reset",
        )
        .await
    }

    fn decline_keys(&self, customer_id: Uuid, address: IpAddr) -> [String; 2] {
        [
            format!("{}payment-declines:customer:{customer_id}", self.prefix),
            format!("{}payment-declines:address:{address}", self.prefix),
        ]
    }

    /// Counts a payment attempt by `customer_id` from `address` as if it were declined, and
    /// returns whether it may go ahead; a burst of concurrent attempts so gets at most the
    /// limit through. Take it back with [`Throttle::not_declined`] unless it was declined.
    ///
    /// # Errors
    /// [`Blocked`] with the seconds left when either count is over its limit.
    pub async fn payment_attempt(&self, customer_id: Uuid, address: IpAddr) -> Result<(), Blocked> {
        let [customer, client] = self.decline_keys(customer_id, address);
        let window = seconds(self.payments.window);
        self.count(
            &[
                (customer, i64::from(self.payments.max_declines), window),
                (
                    client,
                    i64::from(self.payments.max_declines_per_address),
                    window,
                ),
            ],
            "payment",
        )
        .await
    }

    /// After a payment attempt whose card was not declined: takes it back from both counts.
    pub async fn not_declined(&self, customer_id: Uuid, address: IpAddr) {
        let [customer, client] = self.decline_keys(customer_id, address);
        let mut pipe = redis::pipe();
        pipe.decr(customer, 1).ignore().decr(client, 1).ignore();
        self.run(pipe, "cannot take back a payment attempt").await;
    }

    /// Adds one to each `(key, limit, window_secs)` counter in one atomic step (a window
    /// starts with its first count) and refuses when any is over its limit, for as long as
    /// the longest of those windows has left.
    async fn count(&self, counters: &[(String, i64, i64)], what: &str) -> Result<(), Blocked> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (key, _, window_secs) in counters {
            pipe.incr(key, 1)
                .cmd("EXPIRE")
                .arg(key)
                .arg(*window_secs)
                .arg("NX")
                .ignore()
                .ttl(key);
        }
        let mut redis = self.redis.clone();
        let counted: redis::RedisResult<Vec<i64>> = pipe.query_async(&mut redis).await;
        let counted = match counted {
            Ok(counted) => counted,
            Err(error) => {
                tracing::warn!(%error, what, "throttle unavailable, letting the request through");
                return Ok(());
            }
        };
        // Two values per counter: its count, then its window's seconds left.
        let blocked_for = counters
            .iter()
            .zip(counted.chunks(2))
            .filter_map(|((_, limit, _), values)| match values {
                [count, ttl] if count > limit => Some(*ttl),
                _ => None,
            })
            .max();
        match blocked_for {
            Some(ttl) => Err(Blocked {
                retry_after_secs: u64::try_from(ttl.max(1)).unwrap_or(1),
            }),
            None => Ok(()),
        }
    }

    /// After a successful login: clears the email's count and takes this attempt back from
    /// the address's (which counts failures, not people signing in).
    pub async fn succeeded(&self, email: &str, address: IpAddr) {
        let mut pipe = redis::pipe();
        pipe.del(self.email_key("login-failures", email))
            .ignore()
            .decr(self.address_key(address), 1)
            .ignore();
        self.run(pipe, "cannot clear a login's attempts").await;
    }

    /// After an attempt whose password was never judged (a service was down or busy): takes
    /// it back from both counts.
    pub async fn undecided(&self, email: &str, address: IpAddr) {
        let mut pipe = redis::pipe();
        pipe.decr(self.email_key("login-failures", email), 1)
            .ignore()
            .decr(self.address_key(address), 1)
            .ignore();
        self.run(pipe, "cannot take back a login attempt").await;
    }

    /// Deletes every count this throttle keeps (every key under its prefix): lifts all
    /// blocks at once, and lets tests leave nothing behind. Returns how many were deleted.
    ///
    /// # Errors
    /// Fails when Redis does.
    pub async fn clear(&self) -> redis::RedisResult<usize> {
        let mut redis = self.redis.clone();
        let mut cursor: u64 = 0;
        let mut deleted = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}*", self.prefix))
                .arg("COUNT")
                .arg(500)
                .query_async(&mut redis)
                .await?;
            if !keys.is_empty() {
                let removed: usize = redis::cmd("DEL").arg(&keys).query_async(&mut redis).await?;
                deleted += removed;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }

    async fn run(&self, pipe: redis::Pipeline, failure: &'static str) {
        let mut redis = self.redis.clone();
        let done: redis::RedisResult<()> = pipe.query_async(&mut redis).await;
        if let Err(error) = done {
            tracing::warn!(%error, "{failure}");
        }
    }
}
