//! Revoked users (deleted accounts) reach every gateway: each follows the set in Redis and
//! answers from memory while its subscription is heard from.

use std::time::Duration;

use spruce_gateway::revocations::Revocations;
use spruce_platform::settings::RedisSettings;
use spruce_testkit::eventually;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Two gateways' sets over the same keys, as replicas have.
fn replicas() -> (Revocations, Revocations) {
    let settings = RedisSettings {
        key_prefix: format!("spruce:test:{}:", Uuid::new_v4().simple()),
        ..RedisSettings::default()
    };
    (
        Revocations::new(&settings).unwrap(),
        Revocations::new(&settings).unwrap(),
    )
}

async fn following(revocations: &Revocations, shutdown: &CancellationToken) {
    tokio::spawn(revocations.clone().follow(shutdown.clone()));
    eventually("the copy loaded", Duration::from_secs(5), || async {
        revocations.answers_from_memory().then_some(()).ok_or(())
    })
    .await;
}

#[tokio::test]
async fn a_revocation_on_one_gateway_reaches_another_which_answers_from_memory() {
    let (one, other) = replicas();
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    // Revoked before the other gateway starts: it loads this one.
    let earlier = Uuid::new_v4();
    one.revoke(earlier, 60).await;
    following(&other, &shutdown).await;
    assert!(other.is_revoked(earlier).await);

    let later = Uuid::new_v4();
    assert!(!other.is_revoked(later).await);
    one.revoke(later, 60).await;
    eventually("the revocation heard", Duration::from_secs(5), || async {
        other.is_revoked(later).await.then_some(()).ok_or(())
    })
    .await;
    assert!(other.answers_from_memory());
    assert!(!other.is_revoked(Uuid::new_v4()).await, "others still pass");
    // The copy stays live on its heartbeats.
    tokio::time::sleep(revocations_window()).await;
    assert!(other.answers_from_memory());
    assert!(other.is_revoked(later).await);
}

#[tokio::test]
async fn a_revocation_lapses_in_the_copy_as_in_redis() {
    let (one, other) = replicas();
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    following(&other, &shutdown).await;
    let user = Uuid::new_v4();
    one.revoke(user, 1).await;
    assert!(one.is_revoked(user).await, "at once where it was made");
    eventually("the revocation heard", Duration::from_secs(5), || async {
        other.is_revoked(user).await.then_some(()).ok_or(())
    })
    .await;
    eventually("the revocation lapsed", Duration::from_secs(5), || async {
        (!other.is_revoked(user).await).then_some(()).ok_or(())
    })
    .await;
}

#[tokio::test]
async fn without_redis_a_set_lets_tokens_through_and_never_claims_a_copy() {
    let settings = RedisSettings {
        url: format!("redis://127.0.0.1:{}", spruce_testkit::free_port()).into(),
        timeout: Duration::from_millis(200),
        ..RedisSettings::default()
    };
    let revocations = Revocations::new(&settings).unwrap();
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    tokio::spawn(revocations.clone().follow(shutdown.clone()));
    let user = Uuid::new_v4();
    revocations.revoke(user, 60).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!revocations.answers_from_memory());
    assert!(!revocations.is_revoked(Uuid::new_v4()).await);
}

fn revocations_window() -> Duration {
    spruce_gateway::revocations::HEARD_WITHIN + Duration::from_millis(500)
}
