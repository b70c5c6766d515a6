//! Search as a test runs it: in-process on a port that stays the same when it is stopped
//! and started again.

use spruce_platform::settings::{BusSettings, CommonSettings, DatabaseSettings, ListenSettings};
use tokio_util::sync::CancellationToken;

use crate::helpers::wait_until_ready;

/// A running search service, on a port that stays the same when it is started again.
pub(crate) struct SearchHandle {
    settings: spruce_search::settings::Settings,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl SearchHandle {
    /// Starts search for the test `id` on `database` against core at `core_url`, and waits
    /// until its read model is loaded.
    pub(crate) async fn start(
        id: &str,
        database: &DatabaseSettings,
        port: u16,
        core_url: &str,
        bus: &BusSettings,
        redis_url: &str,
        shutdown: &CancellationToken,
    ) -> Self {
        let mut settings = spruce_search::settings::Settings {
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
            ..spruce_search::settings::Settings::default()
        };
        settings.core.url = core_url.to_owned();
        settings.read_model.replica = "r1".to_owned();
        // Tests train models when they mean to (one restarts search to see a first one).
        settings.model.train_at_start = false;
        settings.redis.url = redis_url.to_owned().into();
        // Keys of its own, so tests never share cached affinities.
        settings.redis.key_prefix = format!("spruce:test:{id}:search:");
        let search = spruce_search::startup::Application::build(settings.clone())
            .await
            .expect("search builds");
        // Started again, it listens where the gateway already looks.
        settings.common.http.port = search.http_port();
        Self::run(search, settings, shutdown).await
    }

    async fn run(
        search: spruce_search::startup::Application,
        settings: spruce_search::settings::Settings,
        shutdown: &CancellationToken,
    ) -> Self {
        let ready = format!("http://127.0.0.1:{}/readyz", search.http_port());
        let stop = shutdown.child_token();
        let task = tokio::spawn(search.run_until_stopped(stop.clone()));
        wait_until_ready(&ready).await;
        SearchHandle {
            settings,
            stop,
            task,
        }
    }

    /// Stops search as a crash would leave things: its queue keeps what arrives meanwhile.
    pub(crate) async fn stop(self) -> spruce_search::settings::Settings {
        self.stop.cancel();
        self.task.await.ok();
        self.settings
    }

    /// Starts a stopped search again on its old ports, and waits until it is loaded.
    pub(crate) async fn restart(
        settings: spruce_search::settings::Settings,
        shutdown: &CancellationToken,
    ) -> Self {
        let search = spruce_search::startup::Application::build(settings.clone())
            .await
            .expect("search builds again");
        Self::run(search, settings, shutdown).await
    }
}
