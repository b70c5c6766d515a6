//! Customers' affinities (see `domain::recommend`) cached in Redis for `ttl`, forgotten when
//! one of the customer's bookings changes. Redis is an accelerator only: when it is down or
//! slow (each call gives up after `redis.timeout`), recommendations are computed.

use std::time::Duration;

use redis::{AsyncCommands as _, aio::ConnectionManager};
use spruce_platform::settings::RedisSettings;
use uuid::Uuid;

use crate::domain::recommend::Affinity;

/// Bytes of one cached affinity: cleaner id, affinity, whether a source follows, source id.
const ENTRY_BYTES: usize = 16 + 8 + 1 + 16;

/// The Redis cache of affinities.
#[derive(Clone)]
pub struct AffinityCache {
    redis: ConnectionManager,
    prefix: String,
    ttl: Duration,
}

impl AffinityCache {
    /// Prepares a lazily connecting cache, so search starts without Redis.
    ///
    /// # Errors
    /// Fails when the URL is malformed.
    pub fn new(settings: &RedisSettings, ttl: Duration) -> anyhow::Result<Self> {
        Ok(AffinityCache {
            redis: spruce_platform::redis::connect(settings)?,
            prefix: settings.key_prefix.clone(),
            ttl,
        })
    }

    fn key(&self, customer_id: Uuid) -> String {
        format!("{}affinities:{}", self.prefix, customer_id.simple())
    }

    /// Returns the cached affinities of a customer; `None` on a miss or when Redis fails.
    pub async fn get(&self, customer_id: Uuid) -> Option<Vec<Affinity>> {
        let mut redis = self.redis.clone();
        match redis.get::<_, Option<Vec<u8>>>(self.key(customer_id)).await {
            Ok(bytes) => bytes.and_then(|bytes| decode(&bytes)),
            Err(error) => {
                tracing::warn!(%error, "recommendation cache unavailable, computing");
                None
            }
        }
    }

    /// Caches a customer's affinities (best effort).
    pub async fn put(&self, customer_id: Uuid, affinities: &[Affinity]) {
        let mut redis = self.redis.clone();
        let stored: redis::RedisResult<()> = redis
            .set_ex(
                self.key(customer_id),
                encode(affinities),
                self.ttl.as_secs().max(1),
            )
            .await;
        if let Err(error) = stored {
            tracing::debug!(%error, "could not cache affinities");
        }
    }

    /// Forgets a customer's affinities (best effort: the TTL bounds a failure).
    pub async fn forget(&self, customer_id: Uuid) {
        let mut redis = self.redis.clone();
        let deleted: redis::RedisResult<()> = redis.del(self.key(customer_id)).await;
        if let Err(error) = deleted {
            tracing::warn!(%error, %customer_id, "could not forget cached affinities; they expire on their own");
        }
    }
}

fn encode(affinities: &[Affinity]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(affinities.len() * ENTRY_BYTES);
    for affinity in affinities {
        bytes.extend_from_slice(affinity.cleaner_id.as_bytes());
        bytes.extend_from_slice(&affinity.affinity.to_le_bytes());
        bytes.push(u8::from(affinity.because.is_some()));
        bytes.extend_from_slice(affinity.because.unwrap_or_default().as_bytes());
    }
    bytes
}

fn decode(bytes: &[u8]) -> Option<Vec<Affinity>> {
    if !bytes.len().is_multiple_of(ENTRY_BYTES) {
        return None;
    }
    bytes
        .chunks_exact(ENTRY_BYTES)
        .map(|entry| {
            let cleaner_id = Uuid::from_slice(&entry[..16]).ok()?;
            let affinity = f64::from_le_bytes(entry[16..24].try_into().ok()?);
            let because = Uuid::from_slice(&entry[25..41]).ok()?;
            Some(Affinity {
                cleaner_id,
                affinity,
                because: (entry[24] == 1).then_some(because),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinities_go_round_and_garbage_is_a_miss() {
        let affinities = vec![
            Affinity {
                cleaner_id: Uuid::new_v4(),
                affinity: 0.75,
                because: Some(Uuid::new_v4()),
            },
            Affinity {
                cleaner_id: Uuid::new_v4(),
                affinity: 1.0,
                because: None,
            },
        ];
        assert_eq!(decode(&encode(&affinities)), Some(affinities));
        assert_eq!(decode(&[1, 2, 3]), None);
    }
}
