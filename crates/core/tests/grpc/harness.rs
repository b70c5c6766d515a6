//! Core in-process on free ports, on a database and an exchange of the test's own; dropping
//! it stops core and removes both.

use spruce_bus::testing::TestExchange;
use spruce_core::settings::Settings;
use spruce_platform::{
    grpc::request_with_token as with_token,
    keys,
    settings::{CommonSettings, ListenSettings},
    telemetry,
    testing::service_token,
};
use spruce_proto::core::v1::{RegisterRequest, Role, user_service_client::UserServiceClient};
use spruce_testkit::{TestDb, free_port};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A running core.
pub(crate) struct TestCore {
    /// Its gRPC address.
    pub(crate) url: String,
    /// Its database, to look at what a call stored.
    pub(crate) pool: PgPool,
    shutdown: CancellationToken,
    _exchange: TestExchange,
    _database: TestDb,
}

impl TestCore {
    /// Core as it runs locally.
    pub(crate) async fn start() -> Self {
        Self::with(|_| {}).await
    }

    /// Core with its local settings changed by `change`.
    pub(crate) async fn with(change: impl FnOnce(&mut Settings)) -> Self {
        telemetry::init_for_tests();
        let id = Uuid::new_v4().simple().to_string();
        let database = TestDb::new("core");
        let exchange = TestExchange::new(&id);
        let mut settings = Settings {
            grpc: ListenSettings::loopback(),
            common: CommonSettings::loopback(),
            database: spruce_db::testing::settings(&database),
            bus: exchange.settings().clone(),
            ..Settings::default()
        };
        // Nothing listens where search would be: bookings use the rule of thumb.
        settings.search.url = format!("http://127.0.0.1:{}", free_port());
        change(&mut settings);
        let pool = spruce_db::connect(&settings.database)
            .await
            .expect("core's database");
        let core = spruce_core::startup::Application::build(settings)
            .await
            .expect("core builds");
        let url = format!("http://127.0.0.1:{}", core.grpc_port());
        let shutdown = CancellationToken::new();
        tokio::spawn(core.run_until_stopped(shutdown.clone()));
        TestCore {
            url,
            pool,
            shutdown,
            _exchange: exchange,
            _database: database,
        }
    }

    /// Signs a customer up as the gateway does; returns their id and access token.
    pub(crate) async fn register(&self) -> (String, String) {
        self.register_as(Role::Customer).await
    }

    /// Signs a user up in `role` as the gateway does and marks their email verified, as if
    /// they had entered the emailed code; returns their id and access token.
    pub(crate) async fn register_verified(&self, role: Role) -> (String, String) {
        let (id, token) = self.register_as(role).await;
        sqlx::query("UPDATE users SET email_verified_at = now() WHERE id = $1::uuid")
            .bind(&id)
            .execute(&self.pool)
            .await
            .unwrap();
        (id, token)
    }

    /// Signs a user up in `role` as the gateway does; returns their id and access token.
    pub(crate) async fn register_as(&self, role: Role) -> (String, String) {
        let mut users = UserServiceClient::connect(self.url.clone()).await.unwrap();
        let gateway = service_token(keys::dev::GATEWAY_PRIVATE_KEY, "gateway", "core");
        let request = RegisterRequest {
            role: role.into(),
            ..register_request()
        };
        let created = users
            .register(with_token(request, &gateway))
            .await
            .unwrap()
            .into_inner();
        let user = created.user.unwrap();
        (user.id, created.session.unwrap().access_token)
    }
}

impl Drop for TestCore {
    /// Stops core; the database and the exchange go with their fields.
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A customer's signup with a fresh email.
pub(crate) fn register_request() -> RegisterRequest {
    RegisterRequest {
        email: format!("user-{}@example.com", Uuid::new_v4().simple()),
        password: "correct horse battery".to_owned(),
        full_name: "Ann Lee".to_owned(),
        role: Role::Customer.into(),
        timezone: String::new(),
        device: String::new(),
    }
}

/// A connected channel to `url`.
pub(crate) async fn channel(url: String) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap()
}
