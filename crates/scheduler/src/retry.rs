//! How long to wait before trying again.

use std::time::Duration;

/// The wait after failed attempt `attempt` (from 1): `base`, doubling with each attempt, at
/// most `max`.
pub fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
    base.saturating_mul(factor).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_a_cap() {
        let (base, max) = (Duration::from_secs(1), Duration::from_secs(30));
        let waits: Vec<u64> = (1..=7)
            .map(|attempt| backoff(base, max, attempt).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff(base, max, 200).as_secs(), 30);
    }
}
