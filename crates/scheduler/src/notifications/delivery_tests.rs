//! Delivery against the real PostgreSQL, with the push adapter talking HTTP to a local
//! stand-in for the provider.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use secrecy::SecretString;
use spruce_platform::{db, settings::DatabaseSettings};
use sqlx::PgPool;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpListener,
};
use uuid::Uuid;

use super::{
    Channel, Message, Recipient,
    delivery::{DeliverySettings, HttpPushSender, LogSender, Senders, deliver_due},
};
use crate::store::{MIGRATIONS, notifications as store};

/// A push provider that answers each request with the next status of its script (200 once
/// the script is used up) and keeps the bodies it got.
struct StandIn {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl StandIn {
    async fn start(script: &[u16]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/v1/projects/test/messages:send",
            listener.local_addr().unwrap()
        );
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                // Headers, then as many bytes as Content-Length says.
                loop {
                    let read = socket.read(&mut buffer).await.unwrap_or(0);
                    if read == 0 {
                        break;
                    }
                    request.extend_from_slice(&buffer[..read]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|line| {
                                let (name, value) = line.split_once(':')?;
                                name.eq_ignore_ascii_case("content-length")
                                    .then(|| value.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            kept.lock().unwrap().push(text[end + 4..].to_owned());
                            break;
                        }
                    }
                }
                let status = script.lock().unwrap().pop_front().unwrap_or(200);
                let body = if status == 200 {
                    "{\"name\":\"ok\"}"
                } else {
                    "{\"error\":\"scripted\"}"
                };
                let response = format!(
                    "HTTP/1.1 {status} Scripted\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(response.as_bytes()).await.ok();
            }
        });
        StandIn { url, bodies }
    }
}

fn settings() -> DeliverySettings {
    DeliverySettings {
        poll: Duration::from_millis(50),
        batch: 10,
        concurrency: 4,
        max_attempts: 3,
        // No wait: the test sends again at once.
        retry_base: Duration::ZERO,
        retry_max: Duration::ZERO,
        lease: Duration::from_secs(60),
    }
}

async fn database() -> (DatabaseSettings, PgPool) {
    let settings = DatabaseSettings {
        name: format!("spruce_test_{}_delivery", Uuid::new_v4().simple()),
        max_connections: 4,
        ..DatabaseSettings::default()
    };
    let pool = db::connect_and_migrate(&settings, MIGRATIONS)
        .await
        .unwrap();
    (settings, pool)
}

/// A user with a device, and one push notification recorded for them.
async fn recorded_push(pool: &PgPool) -> Uuid {
    let user_id = Uuid::new_v4();
    let mut connection = pool.acquire().await.unwrap();
    store::upsert_recipient(
        &mut connection,
        &Recipient {
            user_id,
            email: "ann@example.com".to_owned(),
            full_name: "Ann".to_owned(),
            role: "customer".to_owned(),
            timezone: "UTC".to_owned(),
            device_token: None,
        },
    )
    .await
    .unwrap();
    assert!(
        store::set_device(&mut connection, user_id, Some("device-1"))
            .await
            .unwrap()
    );
    let message = Message {
        user_id,
        kind: "booking.assigned".to_owned(),
        about: Uuid::new_v4().to_string(),
        subject: "We found you a cleaner".to_owned(),
        body: "Bea will come.".to_owned(),
    };
    assert_eq!(
        store::record(&mut connection, &message, &[Channel::Push])
            .await
            .unwrap(),
        1
    );
    // The same event again records nothing.
    assert_eq!(
        store::record(&mut connection, &message, &[Channel::Push])
            .await
            .unwrap(),
        0
    );
    user_id
}

async fn state_of(pool: &PgPool, user_id: Uuid) -> (String, i32, Option<String>) {
    sqlx::query_as("SELECT delivery, attempts, last_error FROM notifications WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

fn senders(push_url: &str) -> Senders {
    Senders {
        email: Arc::new(LogSender { channel: "email" }),
        push: Arc::new(
            HttpPushSender::new(
                push_url,
                SecretString::from("provider-token"),
                Duration::from_secs(5),
            )
            .unwrap(),
        ),
    }
}

#[tokio::test]
async fn a_5xx_is_retried_and_a_4xx_is_given_up_and_recorded() {
    let (database, pool) = database().await;

    let flaky = StandIn::start(&[503]).await;
    let user = recorded_push(&pool).await;
    assert_eq!(
        deliver_due(&pool, &senders(&flaky.url), &settings())
            .await
            .unwrap(),
        1
    );
    let (delivery, attempts, error) = state_of(&pool, user).await;
    assert_eq!((delivery.as_str(), attempts), ("pending", 1));
    assert!(error.unwrap().contains("503"));
    assert_eq!(
        deliver_due(&pool, &senders(&flaky.url), &settings())
            .await
            .unwrap(),
        1
    );
    let (delivery, attempts, error) = state_of(&pool, user).await;
    assert_eq!((delivery.as_str(), attempts, error), ("sent", 2, None));
    let bodies = flaky.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2);
    let sent: serde_json::Value = serde_json::from_str(&bodies[1]).unwrap();
    assert_eq!(sent["message"]["token"], "device-1");
    assert_eq!(
        sent["message"]["notification"]["title"],
        "We found you a cleaner"
    );
    // Nothing left to send.
    assert_eq!(
        deliver_due(&pool, &senders(&flaky.url), &settings())
            .await
            .unwrap(),
        0
    );

    let refusing = StandIn::start(&[400]).await;
    let user = recorded_push(&pool).await;
    deliver_due(&pool, &senders(&refusing.url), &settings())
        .await
        .unwrap();
    let (delivery, attempts, error) = state_of(&pool, user).await;
    assert_eq!((delivery.as_str(), attempts), ("failed", 1));
    assert!(
        error.unwrap().contains("400"),
        "the provider's answer is kept"
    );
    assert_eq!(
        deliver_due(&pool, &senders(&refusing.url), &settings())
            .await
            .unwrap(),
        0
    );

    // A provider that keeps failing is given up after max_attempts.
    let down = StandIn::start(&[502, 502, 502, 502]).await;
    let user = recorded_push(&pool).await;
    for _ in 0..3 {
        deliver_due(&pool, &senders(&down.url), &settings())
            .await
            .unwrap();
    }
    let (delivery, attempts, _) = state_of(&pool, user).await;
    assert_eq!((delivery.as_str(), attempts), ("failed", 3));

    pool.close().await;
    db::drop_database(&database).await.ok();
}
