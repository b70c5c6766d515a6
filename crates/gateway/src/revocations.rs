//! Users whose access tokens are refused before they expire: their account is gone.
//!
//! Redis holds one key per such user, `<prefix>revoked:user:<id>`, expiring when the last
//! token issued before the deletion would. Each gateway also keeps a copy of the set in
//! memory, so that checking a request costs no round trip: [`Revocations::follow`]
//! subscribes to `<prefix>revoked`, loads the keys, then applies every revocation published
//! there as it happens. The copy answers only while the subscription is known to work: the
//! follower publishes a heartbeat on a channel of its own every [`HEARTBEAT`], and once none
//! has come back for [`HEARD_WITHIN`] (a connection silently cut, say) every check asks
//! Redis again, as it does before the copy is loaded or when the set outgrows
//! [`MAX_COPIED`]. A revocation reaches every gateway as fast as Redis delivers a message.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use anyhow::{Context as _, bail};
use futures_util::StreamExt as _;
use redis::{AsyncCommands as _, aio::ConnectionManager};
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How often a follower proves its subscription works.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How recent the last message must be for the copy to answer.
pub const HEARD_WITHIN: Duration = Duration::from_secs(3);
/// The most revoked users a copy holds; past it, checks ask Redis.
pub const MAX_COPIED: usize = 100_000;

/// The revoked users, in Redis and, while [`Revocations::follow`] runs, in memory.
#[derive(Clone)]
pub struct Revocations {
    redis: ConnectionManager,
    client: redis::Client,
    prefix: String,
    timeout: Duration,
    copy: Arc<Mutex<Copy>>,
}

/// The in-memory set: each user with when their entry lapses, and when the subscription was
/// last heard from (`None` while it is not set up).
#[derive(Default)]
struct Copy {
    users: HashMap<Uuid, Instant>,
    heard: Option<Instant>,
}

impl Copy {
    fn live(&self, now: Instant) -> bool {
        self.heard
            .is_some_and(|heard| now.saturating_duration_since(heard) < HEARD_WITHIN)
    }
}

impl Revocations {
    /// Prepares the set; nothing is contacted until it is used or followed.
    ///
    /// # Errors
    /// Fails when the Redis URL is invalid.
    pub fn new(settings: &spruce_platform::settings::RedisSettings) -> anyhow::Result<Self> {
        Ok(Revocations {
            redis: spruce_platform::redis::connect(settings)?,
            client: spruce_platform::redis::client(settings)?,
            prefix: settings.key_prefix.clone(),
            timeout: settings.timeout,
            copy: Arc::default(),
        })
    }

    fn key(&self, user_id: Uuid) -> String {
        format!("{}revoked:user:{user_id}", self.prefix)
    }

    fn channel(&self) -> String {
        format!("{}revoked", self.prefix)
    }

    fn copy(&self) -> std::sync::MutexGuard<'_, Copy> {
        self.copy.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Refuses every access token of `user_id` issued so far, for `seconds` (as long as one
    /// may live), here at once and on every other gateway once Redis tells it.
    pub async fn revoke(&self, user_id: Uuid, seconds: u64) {
        self.copy()
            .users
            .insert(user_id, Instant::now() + Duration::from_secs(seconds));
        let mut pipe = redis::pipe();
        pipe.set_ex(self.key(user_id), 1, seconds)
            .ignore()
            .publish(self.channel(), format!("{user_id} {seconds}"))
            .ignore();
        let mut redis = self.redis.clone();
        let done: redis::RedisResult<()> = pipe.query_async(&mut redis).await;
        if let Err(error) = done {
            tracing::warn!(%error, "cannot record a revoked user");
        }
    }

    /// Returns whether `user_id`'s access tokens are refused. When neither the copy nor
    /// Redis can say, they are not (and a warning is logged): a deleted account's token then
    /// lives out its minutes, rather than every user being locked out.
    pub async fn is_revoked(&self, user_id: Uuid) -> bool {
        {
            let now = Instant::now();
            let copy = self.copy();
            if copy.live(now) {
                return copy.users.get(&user_id).is_some_and(|until| *until > now);
            }
        }
        let mut redis = self.redis.clone();
        let found: redis::RedisResult<bool> = redis.exists(self.key(user_id)).await;
        found.unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot check revoked users, letting the token through");
            false
        })
    }

    /// Whether checks are answered from the copy now.
    pub fn answers_from_memory(&self) -> bool {
        self.copy().live(Instant::now())
    }

    /// Keeps the copy until `shutdown`: subscribes, loads, applies what is published, and
    /// starts over (after a pause that grows to 30 s) whenever the subscription fails.
    pub async fn follow(self, shutdown: CancellationToken) {
        let mut pause = Duration::from_secs(1);
        loop {
            let followed = self.follow_once(&shutdown).await;
            self.copy().heard = None;
            match followed {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "revoked users: asking Redis on every request until the copy is back");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_secs(30));
        }
    }

    async fn follow_once(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let heartbeat_channel = format!("{}revoked:heartbeat:{}", self.prefix, Uuid::new_v4());
        let mut subscription = timeout(self.timeout, self.client.get_async_pubsub())
            .await
            .context("connecting timed out")??;
        for channel in [self.channel(), heartbeat_channel.clone()] {
            timeout(self.timeout, subscription.subscribe(&channel))
                .await
                .context("subscribing timed out")??;
        }
        // Loaded after subscribing: what is revoked meanwhile arrives as a message.
        let users = timeout(self.timeout * 10, self.load())
            .await
            .context("loading timed out")??;
        {
            let mut copy = self.copy();
            copy.users.extend(users);
            copy.heard = Some(Instant::now());
        }
        tracing::info!("revoked users: answering from memory");
        let mut messages = subscription.on_message();
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                _ = heartbeat.tick() => {
                    if !self.keep_current() {
                        bail!("no heartbeat came back within {HEARD_WITHIN:?}");
                    }
                    let mut redis = self.redis.clone();
                    // A lost heartbeat shows as silence, which is what is watched.
                    let _: redis::RedisResult<()> = redis.publish(&heartbeat_channel, "").await;
                }
                message = messages.next() => {
                    let Some(message) = message else { bail!("the subscription ended") };
                    let mut copy = self.copy();
                    copy.heard = Some(Instant::now());
                    if message.get_channel_name() != heartbeat_channel {
                        let payload: String = message.get_payload().unwrap_or_default();
                        match parse(&payload) {
                            Some((user_id, seconds)) => {
                                copy.users.insert(user_id, Instant::now() + seconds);
                            }
                            None => tracing::warn!(%payload, "revoked users: an unreadable message"),
                        }
                        if copy.users.len() > MAX_COPIED {
                            bail!("more than {MAX_COPIED} revoked users");
                        }
                    }
                }
            }
        }
    }

    /// Drops the lapsed entries; returns whether the copy is still live.
    fn keep_current(&self) -> bool {
        let now = Instant::now();
        let mut copy = self.copy();
        copy.users.retain(|_, until| *until > now);
        copy.live(now)
    }

    /// Every revoked user in Redis, with how long their entry has left.
    async fn load(&self) -> anyhow::Result<Vec<(Uuid, Instant)>> {
        let mut redis = self.redis.clone();
        let pattern = format!("{}revoked:user:*", self.prefix);
        let mut users = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut redis)
                .await?;
            if !keys.is_empty() {
                let mut pipe = redis::pipe();
                for key in &keys {
                    pipe.pttl(key);
                }
                let left: Vec<i64> = pipe.query_async(&mut redis).await?;
                let now = Instant::now();
                for (key, millis) in keys.iter().zip(left) {
                    let id = key.rsplit(':').next().and_then(|id| id.parse().ok());
                    // -2: gone since the scan; -1: no expiry, which revoke never writes.
                    if let (Some(id), Ok(millis @ 1..)) = (id, u64::try_from(millis)) {
                        users.push((id, now + Duration::from_millis(millis)));
                    }
                }
            }
            if users.len() > MAX_COPIED {
                bail!("more than {MAX_COPIED} revoked users");
            }
            if next == 0 {
                return Ok(users);
            }
            cursor = next;
        }
    }
}

/// A published revocation, `"<user id> <seconds>"`.
fn parse(payload: &str) -> Option<(Uuid, Duration)> {
    let (user_id, seconds) = payload.split_once(' ')?;
    Some((
        user_id.parse().ok()?,
        Duration::from_secs(seconds.parse().ok()?),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_revocation_reads_back() {
        let user_id = Uuid::new_v4();
        assert_eq!(
            parse(&format!("{user_id} 900")),
            Some((user_id, Duration::from_secs(900)))
        );
        for bad in ["", "900", "not-a-uuid 900", &format!("{user_id} soon")] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_copy_answers_only_while_heard_from() {
        let now = Instant::now();
        let mut copy = Copy::default();
        assert!(!copy.live(now), "not before it is loaded");
        copy.heard = Some(now);
        assert!(copy.live(now + HEARD_WITHIN / 2));
        assert!(
            !copy.live(now + HEARD_WITHIN),
            "not once silent for too long"
        );
    }
}
