//! Starts core, search, the scheduler and the gateway in-process on free ports, each service
//! on a fresh database, all on an exchange and queues of their own.

use std::time::Duration;

use reqwest::{Client, Response};
use serde_json::{Value, json};
use spruce_platform::{
    settings::{BusSettings, CommonSettings, ListenSettings},
    telemetry,
};
use spruce_scheduler::usecases::delivery::EmailTransport;
use spruce_search::testing::TestSearch;
use spruce_storage::StorageSettings;
use spruce_testkit::{
    TempFolder, TestDb, add_vhost, free_port, rabbitmqctl, run_aside, wait_until_ready,
};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

// The tokens tests sign, shared with every service's own tests.
pub(crate) use spruce_platform::testing::user_token;

pub(crate) const PASSWORD: &str = "correct horse battery";

/// Core, the scheduler and the gateway (and search, when asked for), wired together on
/// databases, an exchange and queues of the test's own. Dropping it stops the services and
/// removes what they made, also when the test fails.
pub(crate) struct TestApp {
    /// The gateway, which the app's HTTP helpers call.
    gateway: TestGateway,
    /// The scheduler's database, for arranging data directly.
    pub(crate) scheduler_pool: PgPool,
    /// Core's database, for checking what it wrote (the outbox).
    pub(crate) core_pool: PgPool,
    /// Core's ops HTTP side (`/readyz`, `/metrics`).
    pub(crate) core_ops_url: String,
    /// Search while it runs, for stopping and starting it again.
    search: Option<TestSearch>,
    /// Every service's database: core's, the scheduler's and search's.
    pub(crate) databases: [TestDb; 3],
    bus: BusSettings,
    /// The RabbitMQ vhost of this test alone, when it takes the broker away.
    vhost: Option<String>,
}

/// The gateway as a test reaches it over HTTP. Dropping it stops it and clears its
/// throttle counts.
pub(crate) struct TestGateway {
    pub(crate) address: String,
    pub(crate) client: Client,
    /// Its settings, for clearing its throttle counts in Redis at the end.
    settings: spruce_gateway::settings::Settings,
    shutdown: CancellationToken,
    /// Where the gateway (and the scheduler) keep uploaded files.
    pub(crate) files: TempFolder,
}

/// How a test wants its services set up: [`TestApp::builder`], then [`Builder::spawn`].
pub(crate) struct Builder {
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
    /// The gateway reads its feature flags from this flagd flag file.
    flags_file: Option<String>,
    /// The gateway and the scheduler keep files here instead of in the test's folder.
    object_store: Option<StorageSettings>,
    refuse_dev_password: bool,
    /// Whether search runs (loading its snapshot makes a start cost a few hundred ms, so
    /// only the tests that search start it); otherwise the gateway finds nothing at its
    /// address.
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

impl Default for Builder {
    fn default() -> Self {
        Builder {
            redis_url: "redis://127.0.0.1:6379".to_owned(),
            core_database_port: None,
            signup_limit: None,
            payment_limits: None,
            stripe_url: None,
            search_limit: None,
            flags_file: None,
            object_store: None,
            refuse_dev_password: false,
            search: false,
            search_redis_url: "redis://127.0.0.1:6379".to_owned(),
            smtp_port: None,
            scheduler_unreachable: false,
            own_vhost: false,
        }
    }
}

impl Builder {
    /// Search runs too.
    pub(crate) fn with_search(mut self) -> Self {
        self.search = true;
        self
    }

    /// The scheduler sends email to the SMTP server on 127.0.0.1:`port`.
    pub(crate) fn smtp(mut self, port: u16) -> Self {
        self.smtp_port = Some(port);
        self
    }

    /// The gateway's Redis is at `url`.
    pub(crate) fn redis(mut self, url: &str) -> Self {
        url.clone_into(&mut self.redis_url);
        self
    }

    /// Search's recommendation cache is at `url`.
    pub(crate) fn search_redis(mut self, url: &str) -> Self {
        url.clone_into(&mut self.search_redis_url);
        self
    }

    /// The gateway finds no scheduler at the address it is given.
    pub(crate) fn scheduler_unreachable(mut self) -> Self {
        self.scheduler_unreachable = true;
        self
    }

    /// The gateway allows `per_customer` declined payments per customer and `per_address`
    /// per client address (in flight included: each attempt counts until it is known not to
    /// be declined).
    pub(crate) fn payment_limits(mut self, per_customer: u32, per_address: u32) -> Self {
        self.payment_limits = Some((per_customer, per_address));
        self
    }

    /// The gateway allows `limit` searches per user a minute.
    pub(crate) fn flags_file(mut self, path: &str) -> Self {
        self.flags_file = Some(path.to_owned());
        self
    }

    /// The gateway and the scheduler keep files in `store` (an S3 bucket, say).
    pub(crate) fn object_store(mut self, store: StorageSettings) -> Self {
        self.object_store = Some(store);
        self
    }

    pub(crate) fn search_limit(mut self, limit: u32) -> Self {
        self.search_limit = Some(limit);
        self
    }

    /// Core pays through the Stripe-style API at `url`.
    pub(crate) fn stripe(mut self, url: &str) -> Self {
        self.stripe_url = Some(url.to_owned());
        // Many bookings at once from one customer, each counted while in flight.
        self.payment_limits = Some((1_000, 1_000));
        self
    }

    /// The services use a RabbitMQ vhost of their own: [`TestApp::take_broker_away`] and
    /// [`TestApp::bring_broker_back`] then cut and restore their broker alone.
    pub(crate) fn own_vhost(mut self) -> Self {
        self.own_vhost = true;
        self
    }

    /// The gateway allows `limit` signups per client address.
    pub(crate) fn signup_limit(mut self, limit: u32) -> Self {
        self.signup_limit = Some(limit);
        self
    }

    /// Core reaches PostgreSQL through 127.0.0.1:`port` (a [`crate::stand_ins::TcpProxy`]).
    pub(crate) fn core_database_port(mut self, port: u16) -> Self {
        self.core_database_port = Some(port);
        self
    }

    /// Core refuses the development password, as it does where production-like.
    pub(crate) fn refusing_the_dev_password(mut self) -> Self {
        self.refuse_dev_password = true;
        self
    }

    /// Starts the services and waits until they are ready.
    pub(crate) async fn spawn(self) -> TestApp {
        telemetry::init_for_tests();
        let id = Uuid::new_v4().simple().to_string();
        let shutdown = CancellationToken::new();
        let mut bus = BusSettings {
            exchange: format!("spruce.test.{id}"),
            queue_expires: Duration::from_secs(120),
            unrouted_expires: Duration::from_secs(120),
            retry_delays: vec![Duration::from_millis(200)],
            ..BusSettings::default()
        };
        let vhost = self.own_vhost.then(|| {
            let vhost = format!("spruce-test-{id}");
            add_vhost(&vhost);
            bus.url = format!("amqp://guest:guest@127.0.0.1:5672/{vhost}").into();
            vhost
        });
        let databases = [
            TestDb::new("core"),
            TestDb::new("scheduler"),
            TestDb::new("search"),
        ];

        let mut core_database = spruce_db::testing::settings(&databases[0]);
        if let Some(port) = self.core_database_port {
            core_database.port = port;
        }
        let mut core_settings = spruce_core::settings::Settings {
            grpc: ListenSettings::loopback(),
            common: CommonSettings::loopback(),
            database: core_database,
            bus: bus.clone(),
            ..spruce_core::settings::Settings::default()
        };
        // Search's port is chosen before core starts, as core prices bookings through it;
        // when search does not run, nothing listens there and core uses its rule of thumb.
        let search_port = free_port();
        let search_url = format!("http://127.0.0.1:{search_port}");
        core_settings.search.url = search_url.clone();
        core_settings.auth.refuse_dev_password = self.refuse_dev_password;
        if let Some(url) = &self.stripe_url {
            core_settings.payments.provider = spruce_core::settings::PaymentProviderKind::Stripe;
            core_settings.payments.stripe.base_url = url.clone();
            core_settings.payments.stripe.secret_key = "sk_test_stand_in".into();
        }
        let core_pool = spruce_db::connect(&core_settings.database)
            .await
            .expect("core database");
        let core = spruce_core::startup::Application::build(core_settings)
            .await
            .expect("core builds");
        let core_url = format!("http://127.0.0.1:{}", core.grpc_port());
        let core_ops_url = format!("http://127.0.0.1:{}", core.http_port());
        tokio::spawn(core.run_until_stopped(shutdown.clone()));

        let search = if self.search {
            let mut settings = spruce_search::testing::settings(
                &id,
                &spruce_db::testing::settings(&databases[2]),
                search_port,
                &core_url,
                &bus,
            );
            settings.redis.url = self.search_redis_url.clone().into();
            Some(TestSearch::start(settings, &shutdown).await)
        } else {
            None
        };

        let files = TempFolder::new("objects");
        let mut scheduler_settings = spruce_scheduler::settings::Settings {
            grpc: ListenSettings::loopback(),
            common: CommonSettings::loopback(),
            database: spruce_db::testing::settings(&databases[1]),
            bus: BusSettings {
                queue_prefix: format!("test-{id}-scheduler"),
                ..bus.clone()
            },
            ..spruce_scheduler::settings::Settings::default()
        };
        scheduler_settings.storage.url = files.url();
        if let Some(store) = &self.object_store {
            scheduler_settings.storage = store.clone();
        }
        // The analytics archive's inserts and files would only load the machine: the
        // scheduler's own tests cover it.
        scheduler_settings.analytics.enabled = false;
        scheduler_settings.core.url = core_url.clone();
        scheduler_settings.search.url = search_url.clone();
        scheduler_settings.runner.poll = Duration::from_millis(100);
        scheduler_settings.runner.retry_base = Duration::from_millis(100);
        scheduler_settings.delivery.poll = Duration::from_millis(100);
        // Tests book tomorrow: remind two days ahead so that tomorrow is always due.
        scheduler_settings.reminders.lead = Duration::from_secs(48 * 3600);
        if let Some(port) = self.smtp_port {
            scheduler_settings.email.transport = EmailTransport::Smtp;
            scheduler_settings.email.port = port;
        }
        // No job runs on the clock in a test; a test runs one by hand (TriggerJob).
        for job in scheduler_settings.jobs.values_mut() {
            job.enabled = false;
        }
        let scheduler_pool = spruce_db::connect(&scheduler_settings.database)
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

        let gateways_scheduler = if self.scheduler_unreachable {
            format!("http://127.0.0.1:{}", free_port())
        } else {
            scheduler_url
        };
        let gateway = TestGateway::start(
            &core_url,
            &search_url,
            &gateways_scheduler,
            &self,
            files,
            shutdown,
        )
        .await;
        TestApp {
            gateway,
            scheduler_pool,
            core_pool,
            core_ops_url,
            search,
            databases,
            bus,
            vhost,
        }
    }
}

impl std::ops::Deref for TestApp {
    type Target = TestGateway;

    fn deref(&self) -> &TestGateway {
        &self.gateway
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // The services stop with the gateway's token; the databases go with their fields.
        self.gateway.shutdown.cancel();
        if let Some(vhost) = &self.vhost {
            rabbitmqctl(&["delete_vhost", vhost]);
        } else {
            let bus = self.bus.clone();
            run_aside(async move { spruce_bus::delete_exchange(&bus).await.ok() });
        }
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
        // Counts left by a test that could not clear them expire within the hour.
        let settings = self.settings.clone();
        run_aside(async move {
            if let Ok(throttle) = spruce_gateway::throttle::Throttle::new(&settings) {
                throttle.clear().await.ok();
            }
        });
    }
}

impl TestApp {
    /// Core, the scheduler and the gateway, as [`TestApp::builder`] sets them up by default.
    pub(crate) async fn spawn() -> Self {
        Self::builder().spawn().await
    }

    /// A set-up to change before [`Builder::spawn`].
    pub(crate) fn builder() -> Builder {
        Builder::default()
    }

    /// Takes the broker away from this test's services, as an outage would: their
    /// connections are closed and new ones refused (no permission on their vhost).
    pub(crate) fn take_broker_away(&self) {
        let vhost = self.vhost.as_deref().expect("built with own_vhost");
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
        let vhost = self.vhost.as_deref().expect("built with own_vhost");
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
        let search = self.search.take().expect("built with_search");
        let mut settings = search.stop().await;
        change(&mut settings);
        meanwhile.await;
        self.search = Some(TestSearch::start(settings, &self.gateway.shutdown).await);
    }

    /// Signs up a customer and returns the session body.
    pub(crate) async fn signup(&self, email: &str) -> Value {
        self.signup_as(email, "customer").await
    }

    /// Signs a user with `role` up with [`PASSWORD`] and marks their email verified, as if
    /// they had entered the emailed code (see [`TestGateway::signup_unverified`]); returns
    /// the session body.
    pub(crate) async fn signup_as(&self, email: &str, role: &str) -> Value {
        let session = self.signup_unverified(email, role).await;
        self.mark_verified(&session).await;
        session
    }

    /// Marks the email of the user a signup `session` names verified in core's database, as
    /// if they had entered the emailed code (before their profile is written, it lists them).
    pub(crate) async fn mark_verified(&self, session: &Value) {
        mark_verified(&self.core_pool, session["user"]["id"].as_str().unwrap()).await;
    }
}

impl TestGateway {
    /// A gateway whose core, search and scheduler are down: nothing listens where it looks.
    pub(crate) async fn without_services() -> Self {
        telemetry::init_for_tests();
        let [core_url, search_url, scheduler_url] =
            [(); 3].map(|()| format!("http://127.0.0.1:{}", free_port()));
        Self::start(
            &core_url,
            &search_url,
            &scheduler_url,
            &Builder::default(),
            TempFolder::new("objects"),
            CancellationToken::new(),
        )
        .await
    }

    async fn start(
        core_url: &str,
        search_url: &str,
        scheduler_url: &str,
        options: &Builder,
        files: TempFolder,
        shutdown: CancellationToken,
    ) -> Self {
        let mut settings = spruce_gateway::settings::Settings {
            common: CommonSettings::loopback(),
            ..spruce_gateway::settings::Settings::default()
        };
        // Its port is known before it starts, for the URLs of the photos it serves.
        settings.common.http.port = free_port();
        let address = format!("http://127.0.0.1:{}", settings.common.http.port);
        settings.storage.url = files.url();
        settings.storage.public_url = format!("{address}/v1/files");
        if let Some(store) = &options.object_store {
            settings.storage = store.clone();
        }
        // Slow uploads are cut off soon (the files tests wait for it).
        settings.uploads.body_timeout = Duration::from_secs(3);
        settings.core.url = core_url.to_owned();
        settings.scheduler.url = scheduler_url.to_owned();
        settings.search.url = search_url.to_owned();
        settings.redis.url = options.redis_url.clone().into();
        if let Some(limit) = options.signup_limit {
            settings.signup_throttle.max_per_address = limit;
        }
        settings.search_throttle.max_per_user = options.search_limit.unwrap_or(1_000_000);
        settings.common.flags.file = options.flags_file.clone().unwrap_or_default();
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
        tokio::spawn(gateway.run_until_stopped(shutdown.clone()));
        TestGateway {
            address,
            client: Client::new(),
            settings,
            shutdown,
            files,
        }
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
