//! Search's gRPC API as the other services call it, each test with its own database,
//! exchange and cache keys: search alone (nothing listens where core would be, so the read
//! model stays unloaded and retraining finds no history), or beside a real core whose events
//! it follows.

mod access;
mod model;
mod read_model;

use std::future::Future;

use spruce_bus::testing::TestExchange;
use spruce_core::testing::TestCore;
use spruce_proto::search::v1::search_service_client::SearchServiceClient;
use spruce_search::testing::TestSearch;
use spruce_testkit::{TestDb, free_port};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A running search; dropping it stops it and removes its database (and its exchange, when
/// it has one of its own).
struct Search {
    search: Option<TestSearch>,
    shutdown: CancellationToken,
    _exchange: Option<TestExchange>,
    _database: TestDb,
}

impl Search {
    /// Search with no core to load from or train on; its read model stays unloaded.
    async fn alone() -> Self {
        spruce_platform::telemetry::init_for_tests();
        let id = Uuid::new_v4().simple().to_string();
        let exchange = TestExchange::new(&id);
        let database = TestDb::new("search");
        let nowhere = format!("http://127.0.0.1:{}", free_port());
        let settings = spruce_search::testing::settings(
            &id,
            &spruce_db::testing::settings(&database),
            0,
            &nowhere,
            exchange.settings(),
        );
        let shutdown = CancellationToken::new();
        let search = TestSearch::launch(settings, &shutdown).await;
        Search {
            search: Some(search),
            shutdown,
            _exchange: Some(exchange),
            _database: database,
        }
    }

    /// Search following `core`, once its read model is loaded.
    async fn beside(core: &TestCore) -> Self {
        let id = Uuid::new_v4().simple().to_string();
        let database = TestDb::new("search");
        let settings = spruce_search::testing::settings(
            &id,
            &spruce_db::testing::settings(&database),
            0,
            &core.url,
            core.bus(),
        );
        let shutdown = CancellationToken::new();
        let search = TestSearch::start(settings, &shutdown).await;
        Search {
            search: Some(search),
            shutdown,
            _exchange: None,
            _database: database,
        }
    }

    fn url(&self) -> String {
        self.running().url.clone()
    }

    async fn client(&self) -> SearchServiceClient<tonic::transport::Channel> {
        SearchServiceClient::new(spruce_core::testing::channel(self.url()).await)
    }

    fn running(&self) -> &TestSearch {
        self.search.as_ref().expect("running")
    }

    /// Stops this replica and starts another in its place (as a rollout replaces a pod),
    /// named `replica`, on the same ports; waits until its read model is loaded.
    async fn replace(&mut self, replica: &str) {
        let mut settings = self.search.take().expect("running").stop().await;
        settings.read_model.replica = replica.to_owned();
        self.search = Some(TestSearch::start(settings, &self.shutdown).await);
    }

    /// Stops search, runs `meanwhile`, starts it again on the same ports and waits until
    /// its read model is loaded.
    async fn restart(&mut self, meanwhile: impl Future<Output = ()>) {
        let settings = self.search.take().expect("running").stop().await;
        meanwhile.await;
        self.search = Some(TestSearch::start(settings, &self.shutdown).await);
    }
}

impl Drop for Search {
    /// Stops search; the database and the exchange go with their fields.
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
