//! Search for tests (the `testing` feature, for dev-dependencies only): in-process, on ports
//! that stay the same when it is stopped and started again, as a restarted pod would be
//! found at its Service's address; and the oracle search's answers are held to, a scan of
//! every cleaner in core's state.

use chrono::Utc;
use spruce_bus::QueueNames;
use spruce_platform::{
    grpc::request_with_token,
    keys,
    settings::{BusSettings, CommonSettings, DatabaseSettings, IdentitySettings, ListenSettings},
};
use spruce_proto::core::v1::{
    StreamCleanersRequest, read_model_service_client::ReadModelServiceClient,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    domain::{
        index::scan,
        query::{RawQuery, SearchQuery},
        readmodel::SnapshotBuilder,
    },
    settings::Settings,
    wire,
};

/// The ids a scan of every cleaner in core's state finds for `query`, best first: what
/// search must answer once it has caught up. Core's state is read from its read-model
/// stream at `core_url` (with search's development key), as search's own snapshot is.
///
/// # Panics
/// When core cannot be read or `query` is not a valid search.
pub async fn scan_of_core(core_url: &str, query: &RawQuery) -> Vec<String> {
    let token = IdentitySettings::development(keys::dev::SEARCH_PRIVATE_KEY)
        .signer("search")
        .expect("search's development key")
        .token("core")
        .expect("a token for core");
    let mut stream = ReadModelServiceClient::connect(core_url.to_owned())
        .await
        .expect("core answers")
        .stream_cleaners(request_with_token(StreamCleanersRequest {}, &token))
        .await
        .expect("core streams its cleaners")
        .into_inner();
    let mut builder = SnapshotBuilder::default();
    while let Some(batch) = stream.message().await.expect("a batch") {
        for state in &batch.cleaners {
            if let Some((cleaner, bookings)) = wire::cleaner_state(state).expect("a cleaner") {
                builder.add(state.version, cleaner, bookings);
            }
        }
    }
    let model = builder.finish();
    let query = SearchQuery::parse(query, Utc::now()).expect("a valid search");
    scan(model.index().cleaners(), &query)
        .hits
        .iter()
        .map(|hit| hit.id.to_string())
        .collect()
}

/// Search's settings for the test `id`: gRPC on 127.0.0.1:`port`, its own data in
/// `database`, following core at `core_url` and its events on `bus` through queues named
/// `test-<id>-search…`, Redis keys under `spruce:test:<id>:search:`, and no training at
/// start (tests train when they mean to).
pub fn settings(
    id: &str,
    database: &DatabaseSettings,
    port: u16,
    core_url: &str,
    bus: &BusSettings,
) -> Settings {
    let mut settings = Settings {
        grpc: ListenSettings {
            port,
            ..ListenSettings::loopback()
        },
        common: CommonSettings::loopback(),
        database: database.clone(),
        bus: BusSettings {
            queue_prefix: format!("test-{id}-search"),
            ..bus.clone()
        },
        ..Settings::default()
    };
    settings.core.url = core_url.to_owned();
    settings.read_model.replica = "r1".to_owned();
    settings.model.train_at_start = false;
    settings.redis.key_prefix = format!("spruce:test:{id}:search:");
    settings
}

/// A running search.
pub struct TestSearch {
    /// Its gRPC address.
    pub url: String,
    /// Its ops address (`/readyz`, `/metrics`).
    pub ops_url: String,
    settings: Settings,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl TestSearch {
    /// Starts search, to stop when `shutdown` is cancelled or [`TestSearch::stop`] is
    /// called, without waiting for its read model (see [`TestSearch::loaded`]).
    ///
    /// # Panics
    /// When it cannot be built.
    pub async fn launch(mut settings: Settings, shutdown: &CancellationToken) -> Self {
        let search = crate::startup::Application::build(settings.clone())
            .await
            .expect("search builds");
        // Started again, it listens where it did.
        settings.grpc.port = search.grpc_port();
        settings.common.http.port = search.http_port();
        let stop = shutdown.child_token();
        TestSearch {
            url: format!("http://127.0.0.1:{}", search.grpc_port()),
            ops_url: format!("http://127.0.0.1:{}", search.http_port()),
            settings,
            task: tokio::spawn(search.run_until_stopped(stop.clone())),
            stop,
        }
    }

    /// Starts search as [`TestSearch::launch`] does and waits until its read model is
    /// loaded.
    pub async fn start(settings: Settings, shutdown: &CancellationToken) -> Self {
        let search = Self::launch(settings, shutdown).await;
        search.loaded().await;
        search
    }

    /// Waits up to 10 s for its read model to be loaded (`/readyz` answers 200).
    pub async fn loaded(&self) {
        spruce_testkit::wait_until_ready(&format!("{}/readyz", self.ops_url)).await;
    }

    /// The names of this replica's queues.
    pub fn queues(&self) -> QueueNames {
        QueueNames::replica(
            &self.settings.bus.queue_prefix,
            &self.settings.read_model.replica_name(),
        )
    }

    /// Stops search; its queue goes with its connection to the broker. Returns its
    /// settings, to start it again on the same ports.
    pub async fn stop(self) -> Settings {
        self.stop.cancel();
        self.task.await.ok();
        self.settings
    }
}
