//! Sending recorded notifications: one provider per channel behind [`Sender`], and the
//! worker that claims due notifications (any replica; a claim is a lease, so a replica that
//! dies mid-send leaves its claim to another), sends them and records the outcome, retrying
//! with backoff.

use spruce_platform::flags::{FAULT_SCHEDULER_NOTIFICATIONS_FAIL, Flags, Subject};
use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use chrono::Utc;
use futures_util::{StreamExt as _, stream};
use lettre::{
    AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor,
    message::{Mailbox, header::ContentType},
    transport::smtp::authentication::Credentials,
};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use spruce_platform::settings;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use uuid::Uuid;

use crate::domain::notifications::{Channel, Recipient, SECRET_KINDS, SENT_BY_EMAIL};
use crate::{
    metrics,
    retry::backoff,
    store::notifications::{self as store, Outgoing},
};

/// How email leaves: `smtp` through an SMTP server, or `log` (development: each email is
/// written to the log and nothing is sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailTransport {
    Log,
    Smtp,
}

/// How the SMTP connection is encrypted: `none` (a local relay), `starttls` or `tls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

/// `[email]`: how to reach the SMTP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct EmailSettings {
    pub transport: EmailTransport,
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: String,
    /// Or `password_file`.
    pub password: SecretString,
    /// The sender, e.g. `Spruce <no-reply@spruce.example>`.
    pub from: String,
    #[serde(deserialize_with = "settings::duration")]
    pub timeout: Duration,
}

impl Default for EmailSettings {
    fn default() -> Self {
        EmailSettings {
            transport: EmailTransport::Log,
            host: "127.0.0.1".to_owned(),
            port: 25,
            tls: SmtpTls::None,
            username: String::new(),
            password: SecretString::from(""),
            from: "Spruce <no-reply@spruce.example>".to_owned(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Worth trying again (a timeout, a 5xx, a busy server).
    Retryable(String),
    /// Trying again cannot help (a refused address, a 4xx).
    Permanent(String),
}

/// A boxed send, so providers can be chosen at run time.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + 'a>>;

/// One channel's provider.
pub trait Sender: Send + Sync {
    /// Sends `subject` and `body` to `address` (an email address, a device token).
    fn send<'a>(&'a self, address: &'a str, subject: &'a str, body: &'a str) -> SendFuture<'a>;
}

/// Writes each notification to the log instead of sending it (development).
#[derive(Debug, Default)]
pub struct LogSender {
    pub channel: &'static str,
}

impl Sender for LogSender {
    fn send<'a>(&'a self, address: &'a str, subject: &'a str, body: &'a str) -> SendFuture<'a> {
        Box::pin(async move {
            tracing::info!(
                channel = self.channel,
                address,
                subject,
                body,
                "notification (logged, not sent)"
            );
            Ok(())
        })
    }
}

/// Email over SMTP.
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpSender {
    /// Connects lazily to the server `settings` name.
    ///
    /// # Errors
    /// Fails when the TLS mode or the sender address is not usable.
    pub fn new(settings: &EmailSettings) -> anyhow::Result<Self> {
        let builder = match settings.tls {
            SmtpTls::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            }
            SmtpTls::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)?
            }
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host)?,
        };
        let mut builder = builder.port(settings.port).timeout(Some(settings.timeout));
        if !settings.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                settings.username.clone(),
                settings.password.expose_secret().to_owned(),
            ));
        }
        Ok(SmtpSender {
            transport: builder.build(),
            from: settings.from.parse()?,
        })
    }
}

impl Sender for SmtpSender {
    fn send<'a>(&'a self, address: &'a str, subject: &'a str, body: &'a str) -> SendFuture<'a> {
        Box::pin(async move {
            let to: Mailbox = address.parse().map_err(|error| {
                SendError::Permanent(format!("bad address {address:?}: {error}"))
            })?;
            let email = lettre::Message::builder()
                .from(self.from.clone())
                .to(to)
                .subject(subject)
                .header(ContentType::TEXT_PLAIN)
                .body(body.to_owned())
                .map_err(|error| SendError::Permanent(error.to_string()))?;
            self.transport
                .send(email)
                .await
                .map(|_| ())
                .map_err(|error| {
                    if error.is_permanent() {
                        SendError::Permanent(error.to_string())
                    } else {
                        SendError::Retryable(error.to_string())
                    }
                })
        })
    }
}

/// Push through an HTTP provider API, FCM HTTP v1 style: `POST url` with a bearer token and
/// `{"message": {"token": …, "notification": {"title": …, "body": …}}}`.
pub struct HttpPushSender {
    client: reqwest::Client,
    url: String,
    token: SecretString,
}

impl HttpPushSender {
    /// Posts to `url` with `token`, giving up on a call after `timeout`.
    ///
    /// # Errors
    /// Fails when the HTTP client cannot be built.
    pub fn new(url: &str, token: SecretString, timeout: Duration) -> anyhow::Result<Self> {
        Ok(HttpPushSender {
            client: reqwest::Client::builder().timeout(timeout).build()?,
            url: url.to_owned(),
            token,
        })
    }
}

impl Sender for HttpPushSender {
    fn send<'a>(&'a self, address: &'a str, subject: &'a str, body: &'a str) -> SendFuture<'a> {
        Box::pin(async move {
            let message = serde_json::json!({
                "message": {"token": address, "notification": {"title": subject, "body": body}}
            });
            let response = self
                .client
                .post(&self.url)
                .bearer_auth(self.token.expose_secret())
                .json(&message)
                .send()
                .await
                .map_err(|error| SendError::Retryable(format!("push provider: {error}")))?;
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            let mut text = response.text().await.unwrap_or_default();
            text.truncate(300);
            let error = format!("push provider answered {status}: {text}");
            if status.is_server_error() || status.as_u16() == 429 {
                Err(SendError::Retryable(error))
            } else {
                Err(SendError::Permanent(error))
            }
        })
    }
}

/// A lookup future, boxed so the directory can be chosen at run time.
pub type LookupFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Recipient>, String>> + Send + 'a>>;

/// Where to find a user the scheduler has not heard of: one whose `user.registered` it never
/// saw (the seeded data set, or a signup before its queue existed). Core, in production
/// ([`crate::upstream::Upstreams`]).
pub trait Directory: Send + Sync {
    /// The user as a recipient; `Ok(None)` when there is no such user; `Err` when it could
    /// not be asked (worth trying again).
    fn find(&self, user_id: Uuid) -> LookupFuture<'_>;
}

/// The provider of each channel.
#[derive(Clone)]
pub struct Senders {
    pub email: Arc<dyn Sender>,
    pub push: Arc<dyn Sender>,
}

impl Senders {
    /// Each sender, failing every send (to be retried) while the fault-injection flag
    /// `fault-scheduler-notifications-fail` is on.
    #[must_use]
    pub fn with_fault_flag(self, flags: &Flags) -> Senders {
        let faulty = |inner| -> Arc<dyn Sender> {
            Arc::new(FaultFlagged {
                inner,
                flags: flags.clone(),
            })
        };
        Senders {
            email: faulty(self.email),
            push: faulty(self.push),
        }
    }
}

/// A sender that fails while `fault-scheduler-notifications-fail` is on.
struct FaultFlagged {
    inner: Arc<dyn Sender>,
    flags: Flags,
}

impl Sender for FaultFlagged {
    fn send<'a>(&'a self, address: &'a str, subject: &'a str, body: &'a str) -> SendFuture<'a> {
        Box::pin(async move {
            if self
                .flags
                .enabled(&FAULT_SCHEDULER_NOTIFICATIONS_FAIL, Subject::default())
            {
                return Err(SendError::Retryable(
                    "a fault injected by fault-scheduler-notifications-fail".to_owned(),
                ));
            }
            self.inner.send(address, subject, body).await
        })
    }
}

/// How the worker claims and retries: `[delivery]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DeliverySettings {
    /// Between two looks for due notifications when the last found less than a batch.
    #[serde(deserialize_with = "settings::duration")]
    pub poll: Duration,
    /// Notifications claimed at once.
    pub batch: u32,
    /// Sends in flight at once.
    pub concurrency: usize,
    pub max_attempts: u32,
    /// The wait before the second attempt, doubling after each failure.
    #[serde(deserialize_with = "settings::duration")]
    pub retry_base: Duration,
    /// The longest wait between attempts.
    #[serde(deserialize_with = "settings::duration")]
    pub retry_max: Duration,
    /// How long a claim holds before another replica may take the notification over.
    #[serde(deserialize_with = "settings::duration")]
    pub lease: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            poll: Duration::from_millis(500),
            batch: 50,
            concurrency: 8,
            max_attempts: 5,
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(600),
            lease: Duration::from_secs(60),
        }
    }
}

/// Sends due notifications until `shutdown`.
pub async fn run(
    pool: PgPool,
    senders: Senders,
    directory: Arc<dyn Directory>,
    settings: DeliverySettings,
    shutdown: CancellationToken,
) {
    // Every series from zero: the objectives' rules and dashboards find them before the
    // first send, and `increase()` sees the first failure.
    for channel in [Channel::Email, Channel::Push] {
        for outcome in ["sent", "retried", "failed"] {
            metrics::NOTIFICATIONS.with_label_values(&[channel.as_str(), outcome]);
        }
    }
    while !shutdown.is_cancelled() {
        match deliver_due(&pool, &senders, &*directory, &settings).await {
            // A full batch: more may be waiting.
            Ok(sent) if sent >= usize::try_from(settings.batch).unwrap_or(usize::MAX) => continue,
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "notification delivery failed");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(settings.poll) => {}
        }
    }
}

/// Claims one batch of due notifications, sends them and records each outcome; returns
/// how many it claimed.
///
/// # Errors
/// Fails when the database does.
pub async fn deliver_due(
    pool: &PgPool,
    senders: &Senders,
    directory: &dyn Directory,
    settings: &DeliverySettings,
) -> anyhow::Result<usize> {
    let claimed = {
        let mut connection = pool.acquire().await?;
        store::claim_due(
            &mut connection,
            i64::from(settings.batch),
            settings.lease.as_secs_f64(),
        )
        .await?
    };
    let count = claimed.len();
    let outcomes: Vec<_> = stream::iter(claimed)
        .map(|outgoing| async move {
            let result = match address_of(pool, directory, &outgoing).await {
                Ok(address) => send(senders, &outgoing, &address).await,
                Err(error) => Err(error),
            };
            (outgoing, result)
        })
        .buffer_unordered(settings.concurrency.max(1))
        .collect()
        .await;
    let mut connection = pool.acquire().await?;
    for (outgoing, result) in outcomes {
        let channel = outgoing.channel.as_str();
        match result {
            Ok(()) => {
                store::mark_sent(&mut connection, outgoing.id).await?;
                store::forget_secret(&mut connection, outgoing.id, SECRET_KINDS, SENT_BY_EMAIL)
                    .await?;
                metrics::NOTIFICATIONS
                    .with_label_values(&[channel, "sent"])
                    .inc();
            }
            Err(SendError::Retryable(error)) if outgoing.attempts < settings.max_attempts => {
                let wait = backoff(settings.retry_base, settings.retry_max, outgoing.attempts);
                let retry_at = Utc::now() + chrono::Duration::from_std(wait)?;
                store::mark_failed(&mut connection, outgoing.id, &error, Some(retry_at)).await?;
                metrics::NOTIFICATIONS
                    .with_label_values(&[channel, "retried"])
                    .inc();
            }
            Err(SendError::Retryable(error) | SendError::Permanent(error)) => {
                tracing::warn!(notification = %outgoing.id, channel, error = %error, "notification given up");
                store::mark_failed(&mut connection, outgoing.id, &error, None).await?;
                store::forget_secret(&mut connection, outgoing.id, SECRET_KINDS, SENT_BY_EMAIL)
                    .await?;
                metrics::NOTIFICATIONS
                    .with_label_values(&[channel, "failed"])
                    .inc();
            }
        }
    }
    Ok(count)
}

/// Where `outgoing` goes: the recipient's address as stored, or, for an email to a user the
/// scheduler has not heard of, the one `directory` knows (kept as the recipient).
async fn address_of(
    pool: &PgPool,
    directory: &dyn Directory,
    outgoing: &Outgoing,
) -> Result<String, SendError> {
    if let Some(address) = &outgoing.address {
        return Ok(address.clone());
    }
    if outgoing.channel != Channel::Email {
        // A device token arrives only with the user's own device registration.
        return Err(SendError::Retryable(
            "the recipient's device is not known yet".to_owned(),
        ));
    }
    let recipient = directory
        .find(outgoing.user_id)
        .await
        .map_err(|error| SendError::Retryable(format!("looking up the recipient: {error}")))?
        .ok_or_else(|| SendError::Permanent("no such user".to_owned()))?;
    let stored = async {
        let mut connection = pool.acquire().await?;
        store::insert_recipient_if_missing(&mut connection, &recipient).await
    };
    stored
        .await
        .map_err(|error| SendError::Retryable(format!("keeping the recipient: {error}")))?;
    Ok(recipient.email)
}

async fn send(senders: &Senders, outgoing: &Outgoing, address: &str) -> Result<(), SendError> {
    let sender = match outgoing.channel {
        Channel::Email => &senders.email,
        Channel::Push => &senders.push,
    };
    sender
        .send(address, &outgoing.subject, &outgoing.body)
        .await
}
