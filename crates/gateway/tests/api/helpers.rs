//! Starts core, search, the scheduler and the gateway in-process on free ports, each service
//! on a fresh database, all on an exchange and queues of their own.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Client, Response};
use serde_json::{Value, json};
use spruce_platform::{
    auth::AccessClaims,
    bus, db, keys,
    settings::{BusSettings, DatabaseSettings, ListenSettings},
    telemetry,
};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::search_handle::SearchHandle;

pub(crate) const PASSWORD: &str = "correct horse battery";

pub(crate) struct TestApp {
    pub(crate) address: String,
    pub(crate) client: Client,
    /// The scheduler's database, for arranging data directly.
    pub(crate) scheduler_pool: Option<PgPool>,
    /// Core's database, for checking what it wrote (the outbox).
    pub(crate) core_pool: Option<PgPool>,
    /// Core's gRPC address, for calls only other services make.
    pub(crate) core_url: Option<String>,
    /// The scheduler's gRPC address.
    pub(crate) scheduler_url: Option<String>,
    /// Search, for stopping and starting it again.
    pub(crate) search: Option<SearchHandle>,
    /// Every service's database.
    pub(crate) databases: Vec<DatabaseSettings>,
    bus: Option<BusSettings>,
    /// The RabbitMQ vhost of this test alone, when it takes the broker away.
    vhost: Option<String>,
    /// Core's ops HTTP side (`/readyz`, `/metrics`).
    pub(crate) core_ops_url: Option<String>,
    /// The gateway's settings, for clearing its throttle counts in Redis at the end.
    gateway: spruce_gateway::settings::Settings,
    shutdown: CancellationToken,
}

/// How a test wants its services set up.
struct Options {
    redis_url: String,
    /// Core reaches PostgreSQL through this port (a [`crate::stand_ins::TcpProxy`]).
    core_database_port: Option<u16>,
    signup_limit: Option<u32>,
    /// The gateway's declined payments allowed per customer and per client address.
    payment_limits: Option<(u32, u32)>,
    /// Core pays through a Stripe-style API at this URL instead of the fake provider.
    stripe_url: Option<String>,
    /// Searches per user a minute; unset: more than any test makes (tests poll searches).
    search_limit: Option<u32>,
    refuse_dev_password: bool,
    /// Core's `grpc.reflection` (unset: on, as locally).
    core_reflection: Option<bool>,
    /// Whether search runs (its quorum queues make a start cost a few hundred ms, so only
    /// the tests that search start it); otherwise the gateway finds nothing at its address.
    search: bool,
    /// Search's Redis (the recommendation cache).
    search_redis_url: String,
    /// Where the scheduler sends email (an [`crate::stand_ins::SmtpSink`]); unset: to its log.
    smtp_port: Option<u16>,
    /// The gateway is given a scheduler address where nothing listens (the scheduler
    /// still runs, for its database and queues to be cleaned up as usual).
    scheduler_unreachable: bool,
    /// The services use a RabbitMQ vhost of their own, which the test can take away.
    own_vhost: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            redis_url: "redis://127.0.0.1:6379".to_owned(),
            core_database_port: None,
            signup_limit: None,
            payment_limits: None,
            stripe_url: None,
            search_limit: None,
            refuse_dev_password: false,
            core_reflection: None,
            search: false,
            search_redis_url: "redis://127.0.0.1:6379".to_owned(),
            smtp_port: None,
            scheduler_unreachable: false,
            own_vhost: false,
        }
    }
}

pub(crate) fn loopback() -> ListenSettings {
    ListenSettings {
        host: "127.0.0.1".to_owned(),
        ..ListenSettings::default()
    }
}

/// Signs a token with `key` (a PKCS#8 PEM) for `claims`.
pub(crate) fn sign(key: &str, claims: &AccessClaims, kid: Option<&str>) -> String {
    let key = EncodingKey::from_ed_pem(key.as_bytes()).unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// Returns the claims of a user's access token valid for `ttl_secs` (negative: expired).
pub(crate) fn user_claims(user_id: Uuid, role: &str, ttl_secs: i64) -> AccessClaims {
    let now = chrono::Utc::now().timestamp();
    AccessClaims {
        sub: user_id.to_string(),
        role: role.to_owned(),
        iss: "spruce".to_owned(),
        aud: "spruce-mobile".to_owned(),
        iat: now.min(now + ttl_secs),
        exp: now + ttl_secs,
        sid: None,
    }
}

/// Returns the claims of a 5-minute service token of the service `name` for calling the
/// service `audience`.
pub(crate) fn service_claims(name: &str, audience: &str) -> AccessClaims {
    let now = chrono::Utc::now().timestamp();
    AccessClaims {
        sub: name.to_owned(),
        role: "service".to_owned(),
        iss: name.to_owned(),
        aud: audience.to_owned(),
        iat: now,
        exp: now + 300,
        sid: None,
    }
}

/// Returns a service token naming `name` (its `sub`, `iss` and `kid`) for calling
/// `audience`, signed with `key`.
pub(crate) fn service_token(key: &str, name: &str, audience: &str) -> String {
    sign(key, &service_claims(name, audience), Some(name))
}

/// Returns an access token signed with core's development key for a new user id and `role`.
pub(crate) fn user_token(role: &str) -> String {
    sign(
        keys::dev::CORE_PRIVATE_KEY,
        &user_claims(Uuid::new_v4(), role, 600),
        None,
    )
}

/// Wraps `message` in a gRPC request whose bearer is `token`.
pub(crate) fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// Returns a port nothing listens on.
pub(crate) fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

pub(crate) fn test_database(id: &str, service: &str) -> DatabaseSettings {
    DatabaseSettings {
        name: format!("spruce_test_{id}_{service}"),
        max_connections: 5,
        ..DatabaseSettings::default()
    }
}

impl TestApp {
    /// Core, the scheduler and the gateway, wired together.
    pub(crate) async fn spawn() -> Self {
        Self::spawn_with_redis("redis://127.0.0.1:6379").await
    }

    /// Core, search, the scheduler and the gateway.
    pub(crate) async fn spawn_with_search() -> Self {
        Self::spawn_configured(Options {
            search: true,
            ..Options::default()
        })
        .await
    }

    /// Core, the scheduler (sending email to 127.0.0.1:`smtp_port`) and the gateway.
    pub(crate) async fn spawn_with_smtp(smtp_port: u16) -> Self {
        Self::spawn_configured(Options {
            smtp_port: Some(smtp_port),
            ..Options::default()
        })
        .await
    }

    /// Core, search (its recommendation cache at `redis_url`), the scheduler and the gateway.
    pub(crate) async fn spawn_with_search_redis(redis_url: &str) -> Self {
        Self::spawn_configured(Options {
            search: true,
            search_redis_url: redis_url.to_owned(),
            ..Options::default()
        })
        .await
    }

    /// Core, the scheduler and the gateway, with the gateway's Redis at `redis_url`.
    pub(crate) async fn spawn_with_redis(redis_url: &str) -> Self {
        Self::spawn_configured(Options {
            redis_url: redis_url.to_owned(),
            ..Options::default()
        })
        .await
    }

    /// Core and the gateway, which finds no scheduler at the address it was given.
    pub(crate) async fn spawn_with_scheduler_unreachable() -> Self {
        Self::spawn_configured(Options {
            scheduler_unreachable: true,
            ..Options::default()
        })
        .await
    }

    /// Same, with the gateway allowing `per_customer` declined payments per customer and
    /// `per_address` per client address (in flight included: each attempt counts until it
    /// is known not to be declined).
    pub(crate) async fn spawn_with_payment_limits(per_customer: u32, per_address: u32) -> Self {
        Self::spawn_configured(Options {
            payment_limits: Some((per_customer, per_address)),
            ..Options::default()
        })
        .await
    }

    /// Search and the rest, the scheduler sending email to the SMTP server on `smtp_port`.
    pub(crate) async fn spawn_with_search_and_smtp(smtp_port: u16) -> Self {
        Self::spawn_configured(Options {
            search: true,
            smtp_port: Some(smtp_port),
            ..Options::default()
        })
        .await
    }

    /// Search and the rest, with the gateway allowing `limit` searches per user a minute.
    pub(crate) async fn spawn_with_search_limit(limit: u32) -> Self {
        Self::spawn_configured(Options {
            search: true,
            search_limit: Some(limit),
            ..Options::default()
        })
        .await
    }

    /// Same, with core paying through the Stripe-style API at `url`.
    pub(crate) async fn spawn_with_stripe(url: &str) -> Self {
        Self::spawn_configured(Options {
            stripe_url: Some(url.to_owned()),
            // Many bookings at once from one customer, each counted while in flight.
            payment_limits: Some((1_000, 1_000)),
            ..Options::default()
        })
        .await
    }

    /// Same, with the gateway allowing `limit` signups per client address.
    /// Services on a RabbitMQ vhost of their own: [`TestApp::take_broker_away`] and
    /// [`TestApp::bring_broker_back`] then cut and restore their broker alone.
    pub(crate) async fn spawn_on_own_vhost() -> Self {
        Self::spawn_configured(Options {
            own_vhost: true,
            ..Options::default()
        })
        .await
    }

    pub(crate) async fn spawn_with_signup_limit(limit: u32) -> Self {
        Self::spawn_configured(Options {
            signup_limit: Some(limit),
            ..Options::default()
        })
        .await
    }

    /// Same, with core reaching PostgreSQL through 127.0.0.1:`port` (a [`crate::stand_ins::TcpProxy`]).
    pub(crate) async fn spawn_with_core_database_port(port: u16) -> Self {
        Self::spawn_configured(Options {
            core_database_port: Some(port),
            ..Options::default()
        })
        .await
    }

    /// Same, with core serving gRPC reflection or not.
    pub(crate) async fn spawn_with_core_reflection(reflection: bool) -> Self {
        Self::spawn_configured(Options {
            core_reflection: Some(reflection),
            ..Options::default()
        })
        .await
    }

    /// Same, with core refusing the development password as it does where production-like.
    pub(crate) async fn spawn_refusing_the_dev_password() -> Self {
        Self::spawn_configured(Options {
            refuse_dev_password: true,
            ..Options::default()
        })
        .await
    }

    async fn spawn_configured(options: Options) -> Self {
        telemetry::init_for_tests();
        let id = Uuid::new_v4().simple().to_string();
        let shutdown = CancellationToken::new();
        let mut bus = BusSettings {
            exchange: format!("spruce.test.{id}"),
            queue_expires_ms: 120_000,
            unrouted_expires_ms: 120_000,
            retry_delays_ms: vec![200],
            ..BusSettings::default()
        };
        let vhost = options.own_vhost.then(|| {
            let vhost = format!("spruce-test-{id}");
            rabbitmqctl(&["add_vhost", &vhost]);
            rabbitmqctl(&["set_permissions", "-p", &vhost, "guest", ".*", ".*", ".*"]);
            bus.url = format!("amqp://guest:guest@127.0.0.1:5672/{vhost}").into();
            vhost
        });

        let mut core_database = test_database(&id, "core");
        if let Some(port) = options.core_database_port {
            core_database.port = port;
        }
        let mut core_settings = spruce_core::settings::Settings {
            grpc: loopback(),
            http: loopback(),
            database: core_database,
            bus: bus.clone(),
            ..spruce_core::settings::Settings::default()
        };
        // Search's port is chosen before core starts, as core prices bookings through it;
        // when search does not run, nothing listens there and core uses its rule of thumb.
        let search_port = closed_port();
        let search_url = format!("http://127.0.0.1:{search_port}");
        core_settings.search.url = search_url.clone();
        core_settings.auth.refuse_dev_password = options.refuse_dev_password;
        core_settings.grpc.reflection = options.core_reflection;
        if let Some(url) = &options.stripe_url {
            core_settings.payments.provider = spruce_core::settings::PaymentProviderKind::Stripe;
            core_settings.payments.stripe.base_url = url.clone();
            core_settings.payments.stripe.secret_key = "sk_test_stand_in".into();
        }
        let core_pool = db::connect(&core_settings.database)
            .await
            .expect("core database");
        let core = spruce_core::startup::Application::build(core_settings)
            .await
            .expect("core builds");
        let core_url = format!("http://127.0.0.1:{}", core.grpc_port());
        let core_ops_url = format!("http://127.0.0.1:{}", core.http_port());
        tokio::spawn(core.run_until_stopped(shutdown.clone()));

        let search = if options.search {
            Some(
                SearchHandle::start(
                    &id,
                    search_port,
                    &core_url,
                    &bus,
                    &options.search_redis_url,
                    &shutdown,
                )
                .await,
            )
        } else {
            None
        };

        let mut scheduler_settings = spruce_scheduler::settings::Settings {
            grpc: loopback(),
            http: loopback(),
            database: test_database(&id, "scheduler"),
            bus: BusSettings {
                queue_prefix: format!("test-{id}-scheduler"),
                ..bus.clone()
            },
            ..spruce_scheduler::settings::Settings::default()
        };
        scheduler_settings.core.url = core_url.clone();
        scheduler_settings.search.url = search_url.clone();
        scheduler_settings.runner.poll_ms = 100;
        scheduler_settings.runner.retry_base_ms = 100;
        scheduler_settings.delivery.poll_ms = 100;
        // Tests book tomorrow: remind two days ahead so that tomorrow is always due.
        scheduler_settings.reminders.lead_hours = 48;
        if let Some(port) = options.smtp_port {
            scheduler_settings.email.transport = "smtp".to_owned();
            scheduler_settings.email.port = port;
        }
        // No job runs on the clock in a test; a test runs one by hand (TriggerJob).
        for job in scheduler_settings.jobs.values_mut() {
            job.enabled = false;
        }
        let scheduler_pool = db::connect(&scheduler_settings.database)
            .await
            .expect("scheduler database");
        let scheduler = spruce_scheduler::startup::Application::build(scheduler_settings)
            .await
            .expect("scheduler builds");
        let scheduler_url = format!("http://127.0.0.1:{}", scheduler.grpc_port());
        let scheduler_ready = format!("http://127.0.0.1:{}/readyz", scheduler.http_port());
        tokio::spawn(scheduler.run_until_stopped(shutdown.clone()));
        // Ready means its queue is bound: an event published before that would wait in
        // the exchange's unrouted queue, as it would on a fresh broker.
        wait_until_ready(&scheduler_ready).await;

        let gateways_scheduler = if options.scheduler_unreachable {
            format!("http://127.0.0.1:{}", closed_port())
        } else {
            scheduler_url.clone()
        };
        let (address, gateway) = spawn_gateway(
            &core_url,
            &search_url,
            &gateways_scheduler,
            &options,
            &shutdown,
        )
        .await;
        TestApp {
            address,
            client: Client::new(),
            scheduler_pool: Some(scheduler_pool),
            core_pool: Some(core_pool),
            core_url: Some(core_url),
            scheduler_url: Some(scheduler_url),
            search,
            databases: vec![
                test_database(&id, "core"),
                test_database(&id, "scheduler"),
                test_database(&id, "search"),
            ],
            bus: Some(bus),
            vhost,
            core_ops_url: Some(core_ops_url),
            gateway,
            shutdown,
        }
    }

    /// A gateway whose core and scheduler are down.
    pub(crate) async fn spawn_without_services() -> Self {
        telemetry::init_for_tests();
        let shutdown = CancellationToken::new();
        let core_url = format!("http://127.0.0.1:{}", closed_port());
        let scheduler_url = format!("http://127.0.0.1:{}", closed_port());
        let search_url = format!("http://127.0.0.1:{}", closed_port());
        let (address, gateway) = spawn_gateway(
            &core_url,
            &search_url,
            &scheduler_url,
            &Options::default(),
            &shutdown,
        )
        .await;
        TestApp {
            address,
            client: Client::new(),
            scheduler_pool: None,
            core_pool: None,
            core_url: None,
            scheduler_url: None,
            search: None,
            databases: Vec::new(),
            bus: None,
            vhost: None,
            core_ops_url: None,
            gateway,
            shutdown,
        }
    }

    /// Stops the services and removes their databases and exchange.
    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        if let Some(search) = self.search {
            search.stop().await;
        }
        for pool in [self.scheduler_pool, self.core_pool].into_iter().flatten() {
            pool.close().await;
        }
        // Give the services a moment to close their pools before the forced drop.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        for database in &self.databases {
            db::drop_database(database).await.ok();
        }
        if let Some(vhost) = &self.vhost {
            rabbitmqctl(&["delete_vhost", vhost]);
        } else if let Some(bus) = &self.bus {
            bus::delete_exchange(bus).await.ok();
        }
        // The counts expire on their own within the hour; a test that fails first leaves
        // them to that.
        let throttle = spruce_gateway::throttle::Throttle::new(&self.gateway).unwrap();
        throttle.clear().await.ok();
    }

    /// Takes the broker away from this test's services, as an outage would: their
    /// connections are closed and new ones refused (no permission on their vhost).
    pub(crate) fn take_broker_away(&self) {
        let vhost = self.vhost.as_deref().expect("spawned on its own vhost");
        rabbitmqctl(&["clear_permissions", "-p", vhost, "guest"]);
        rabbitmqctl(&[
            "close_all_connections",
            "-p",
            vhost,
            "test takes the broker away",
        ]);
    }

    /// Gives the broker back: the services' reconnects succeed again.
    pub(crate) fn bring_broker_back(&self) {
        let vhost = self.vhost.as_deref().expect("spawned on its own vhost");
        rabbitmqctl(&["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"]);
    }

    /// Stops search, runs `meanwhile`, starts search again and waits until it is loaded.
    pub(crate) async fn restart_search<F: Future<Output = ()>>(&mut self, meanwhile: F) {
        self.restart_search_with(meanwhile, |_| {}).await;
    }

    /// Same, with search's settings changed by `change` for the new start.
    pub(crate) async fn restart_search_with<F: Future<Output = ()>>(
        &mut self,
        meanwhile: F,
        change: impl FnOnce(&mut spruce_search::settings::Settings),
    ) {
        let mut settings = self.search.take().expect("search runs").stop().await;
        change(&mut settings);
        meanwhile.await;
        self.search = Some(SearchHandle::restart(settings, &self.shutdown).await);
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(format!("{}{path}", self.address))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn post_raw(&self, path: &str, body: &str) -> Response {
        self.client
            .post(format!("{}{path}", self.address))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn post_authorized(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .post(format!("{}{path}", self.address))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn put_authorized(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .put(format!("{}{path}", self.address))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// Signs up a customer and returns the session body.
    pub(crate) async fn signup(&self, email: &str) -> Value {
        self.signup_as(email, "customer").await
    }

    /// Signs up a user with `role` and returns the session body.
    /// Signs a user up with [`PASSWORD`] and marks their email verified, as if they had
    /// entered the emailed code (see [`TestApp::signup_unverified`]).
    pub(crate) async fn signup_as(&self, email: &str, role: &str) -> Value {
        let session = self.signup_unverified(email, role).await;
        self.mark_verified(&session).await;
        session
    }

    /// Marks the email of the user a signup `session` names verified in core's database, as
    /// if they had entered the emailed code (before their profile is written, it lists them).
    pub(crate) async fn mark_verified(&self, session: &Value) {
        if let Some(core) = &self.core_pool {
            mark_verified(core, session["user"]["id"].as_str().unwrap()).await;
        }
    }

    /// Signs a user up with [`PASSWORD`], their email not yet verified.
    pub(crate) async fn signup_unverified(&self, email: &str, role: &str) -> Value {
        let response = self
            .post(
                "/v1/auth/signup",
                &json!({"email": email, "password": PASSWORD, "full_name": "Ann Lee", "role": role}),
            )
            .await;
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }
}

/// Marks the email of the user `user_id` verified in core's database `core`.
pub(crate) async fn mark_verified(core: &PgPool, user_id: &str) {
    sqlx::query("UPDATE users SET email_verified_at = now() WHERE id = $1::uuid")
        .bind(user_id)
        .execute(core)
        .await
        .unwrap();
}

async fn spawn_gateway(
    core_url: &str,
    search_url: &str,
    scheduler_url: &str,
    options: &Options,
    shutdown: &CancellationToken,
) -> (String, spruce_gateway::settings::Settings) {
    let mut settings = spruce_gateway::settings::Settings {
        http: loopback(),
        ..spruce_gateway::settings::Settings::default()
    };
    settings.upstream.core_url = core_url.to_owned();
    settings.upstream.scheduler_url = scheduler_url.to_owned();
    settings.upstream.search_url = search_url.to_owned();
    settings.redis.url = options.redis_url.clone().into();
    if let Some(limit) = options.signup_limit {
        settings.signup_throttle.max_per_address = limit;
    }
    settings.search_throttle.max_per_user = options.search_limit.unwrap_or(1_000_000);
    // Every test's requests come from one address.
    settings.password_reset_throttle.max_per_address = 10_000;
    if let Some((per_customer, per_address)) = options.payment_limits {
        settings.payment_throttle.max_declines = per_customer;
        settings.payment_throttle.max_declines_per_address = per_address;
    }
    // Keys of its own, so tests never share failure counts.
    settings.redis.key_prefix = format!("spruce:test:{}:", Uuid::new_v4().simple());
    let gateway = spruce_gateway::startup::Application::build(settings.clone())
        .await
        .expect("gateway builds");
    let address = format!("http://127.0.0.1:{}", gateway.port());
    tokio::spawn(gateway.run_until_stopped(shutdown.clone()));
    (address, settings)
}

/// Runs `rabbitmqctl` with `arguments`; panics when it fails.
fn rabbitmqctl(arguments: &[&str]) {
    let output = std::process::Command::new("rabbitmqctl")
        .arg("-q")
        .args(arguments)
        .output()
        .expect("rabbitmqctl runs");
    assert!(
        output.status.success(),
        "rabbitmqctl {arguments:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Waits up to 10 s for `url` to answer 200.
pub(crate) async fn wait_until_ready(url: &str) {
    let client = Client::new();
    for _ in 0..200 {
        if let Ok(response) = client.get(url).send().await
            && response.status().is_success()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{url} did not become ready within 10 s");
}

/// Reads a problem response, checking its content type and status.
pub(crate) async fn problem(response: Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status);
    body
}

/// Returns a unique email address.
pub(crate) fn unique_email() -> String {
    format!("user-{}@example.com", Uuid::new_v4().simple())
}

/// Returns the `field` of every entry of a 422 problem's `errors`.
pub(crate) fn field_names(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap().to_owned())
        .collect()
}
