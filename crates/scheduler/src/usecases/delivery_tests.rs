//! Delivery against the real PostgreSQL, with the push adapter talking HTTP to a local
//! stand-in for the provider.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use secrecy::SecretString;
use spruce_testkit::TestDb;
use sqlx::PgPool;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpListener,
};
use uuid::Uuid;

use super::delivery::{
    DeliverySettings, Directory, HttpPushSender, LogSender, LookupFuture, SendFuture, Sender,
    Senders, deliver_due,
};
use crate::{
    domain::notifications::{Channel, Message, Recipient},
    store::notifications as store,
};

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

/// The scheduler's schema in a database of the test's own, dropped with the `TestDb`.
async fn database() -> (TestDb, PgPool) {
    let (database, _, pool) = crate::store::test_database("delivery").await;
    (database, pool)
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

/// Core's part, for these tests: the users it knows, or (`down`) no answer at all. The real
/// lookup, through core's GetUser as the scheduler, is tested end to end (tests/flow.rs) and
/// at core's boundary (the gateway's trust tests).
#[derive(Default)]
struct Users {
    known: Vec<Recipient>,
    down: bool,
}

impl Directory for Users {
    fn find(&self, user_id: Uuid) -> LookupFuture<'_> {
        let found = self.known.iter().find(|r| r.user_id == user_id).cloned();
        let down = self.down;
        Box::pin(async move {
            if down {
                return Err("core did not answer".to_owned());
            }
            Ok(found)
        })
    }
}

/// An email provider that keeps the addresses it sent to.
#[derive(Default)]
struct Outbox(Mutex<Vec<String>>);

impl Sender for Outbox {
    fn send<'a>(&'a self, address: &'a str, _: &'a str, _: &'a str) -> SendFuture<'a> {
        self.0.lock().unwrap().push(address.to_owned());
        Box::pin(async { Ok(()) })
    }
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
    let (_database, pool) = database().await;

    let flaky = StandIn::start(&[503]).await;
    let user = recorded_push(&pool).await;
    assert_eq!(
        deliver_due(&pool, &senders(&flaky.url), &Users::default(), &settings())
            .await
            .unwrap(),
        1
    );
    let (delivery, attempts, error) = state_of(&pool, user).await;
    assert_eq!((delivery.as_str(), attempts), ("pending", 1));
    assert!(error.unwrap().contains("503"));
    assert_eq!(
        deliver_due(&pool, &senders(&flaky.url), &Users::default(), &settings())
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
        deliver_due(&pool, &senders(&flaky.url), &Users::default(), &settings())
            .await
            .unwrap(),
        0
    );

    let refusing = StandIn::start(&[400]).await;
    let user = recorded_push(&pool).await;
    deliver_due(
        &pool,
        &senders(&refusing.url),
        &Users::default(),
        &settings(),
    )
    .await
    .unwrap();
    let (delivery, attempts, error) = state_of(&pool, user).await;
    assert_eq!((delivery.as_str(), attempts), ("failed", 1));
    assert!(
        error.unwrap().contains("400"),
        "the provider's answer is kept"
    );
    assert_eq!(
        deliver_due(
            &pool,
            &senders(&refusing.url),
            &Users::default(),
            &settings()
        )
        .await
        .unwrap(),
        0
    );

    // A provider that keeps failing is given up after max_attempts.
    let down = StandIn::start(&[502, 502, 502, 502]).await;
    let user = recorded_push(&pool).await;
    for _ in 0..3 {
        deliver_due(&pool, &senders(&down.url), &Users::default(), &settings())
            .await
            .unwrap();
    }
    let (delivery, attempts, _) = state_of(&pool, user).await;
    assert_eq!((delivery.as_str(), attempts), ("failed", 3));

    pool.close().await;
}

#[tokio::test]
async fn an_email_to_a_user_never_heard_of_goes_where_core_says() {
    let (_database, pool) = database().await;
    let outbox = Arc::new(Outbox::default());
    let senders = Senders {
        email: outbox.clone(),
        push: Arc::new(LogSender { channel: "push" }),
    };
    // No user.registered reached the scheduler: no recipient is stored.
    let user_id = Uuid::new_v4();
    let message = Message {
        user_id,
        kind: "booking.created".to_owned(),
        about: Uuid::new_v4().to_string(),
        subject: "A new booking request".to_owned(),
        body: "Ann asks for Monday.".to_owned(),
    };
    let mut connection = pool.acquire().await.unwrap();
    store::record(&mut connection, &message, &[Channel::Email])
        .await
        .unwrap();
    let ann = Recipient {
        user_id,
        email: "ann@example.com".to_owned(),
        full_name: "Ann".to_owned(),
        role: "cleaner".to_owned(),
        timezone: "Europe/Berlin".to_owned(),
        device_token: None,
    };

    // Core cannot be asked: tried again later, nothing sent.
    let down = Users {
        known: vec![ann.clone()],
        down: true,
    };
    deliver_due(&pool, &senders, &down, &settings())
        .await
        .unwrap();
    let (delivery, attempts, error) = state_of(&pool, user_id).await;
    assert_eq!((delivery.as_str(), attempts), ("pending", 1));
    assert!(error.unwrap().contains("core did not answer"));
    assert!(outbox.0.lock().unwrap().is_empty());

    // Core knows the user: sent to their address, and they are a recipient from now on.
    let core = Users {
        known: vec![ann.clone()],
        down: false,
    };
    deliver_due(&pool, &senders, &core, &settings())
        .await
        .unwrap();
    assert_eq!(state_of(&pool, user_id).await.0, "sent");
    assert_eq!(*outbox.0.lock().unwrap(), ["ann@example.com"]);
    let kept = store::find_recipient(&mut connection, user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (kept.email.as_str(), kept.timezone.as_str()),
        ("ann@example.com", "Europe/Berlin")
    );

    // A user core does not know is given up at once.
    let stranger = Message {
        user_id: Uuid::new_v4(),
        ..message
    };
    store::record(&mut connection, &stranger, &[Channel::Email])
        .await
        .unwrap();
    deliver_due(&pool, &senders, &core, &settings())
        .await
        .unwrap();
    let (delivery, attempts, error) = state_of(&pool, stranger.user_id).await;
    assert_eq!((delivery.as_str(), attempts), ("failed", 1));
    assert_eq!(error.as_deref(), Some("no such user"));

    drop(connection);
    pool.close().await;
}
