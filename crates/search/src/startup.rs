//! Builds search from its settings and runs it: gRPC server, ops HTTP side, the event
//! consumer and the upkeep of the read model.

use std::{sync::Arc, time::Duration};

use spruce_bus::Consumer;
use spruce_platform::{
    grpc::{Access, Listeners, ServiceRpc},
    ops::ReadinessCheck,
    settings::BusSettings,
};
use spruce_proto::search::v1::search_service_server::SearchServiceServer;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use crate::{
    error::SearchError,
    events::ReadModelEvents,
    grpc::SearchApi,
    settings::Settings,
    store::{MIGRATIONS, cache::AffinityCache},
    upstream::CoreReadModel,
    usecases::{
        live::{self, LiveModel, ReadModelUpdates},
        models::Models,
        search::Searches,
    },
};

/// The RPCs a service may call on its own behalf: the scheduler retrains the model nightly
/// and finds candidates for open bookings, core prices bookings with the model's estimates.
const SERVICE_RPCS: &[ServiceRpc] = &[
    ServiceRpc {
        caller: "scheduler",
        path: "/spruce.search.v1.SearchService/RetrainModel",
    },
    ServiceRpc {
        caller: "scheduler",
        path: "/spruce.search.v1.SearchService/SearchCleanersBatch",
    },
    ServiceRpc {
        caller: "core",
        path: "/spruce.search.v1.SearchService/EstimateDuration",
    },
];

/// How long a stopping consumer may take to finish the event in hand.
const CONSUMER_DRAIN: Duration = Duration::from_secs(5);

/// A built search service, its listeners bound.
pub struct Application {
    listeners: Listeners,
    pool: PgPool,
    access: Access,
    bus: BusSettings,
    replica: String,
    core: CoreReadModel,
    prune_interval: Duration,
    training_threads: usize,
    train_at_start: bool,
    cache: AffinityCache,
}

impl Application {
    /// Connects to the database (creating and migrating it where configured) and binds the
    /// listeners; port 0 picks a free port. Core is reached lazily.
    ///
    /// # Errors
    /// Fails when a key, the database or a port is unusable.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let access = Access {
            verifier: settings.verifier()?,
            service_rpcs: SERVICE_RPCS,
            reflection: settings.grpc.reflection(),
        };
        let cache = AffinityCache::new(&settings.redis, settings.recommendations.cache_ttl)?;
        let core = CoreReadModel::new(&settings.core, settings.identity.signer("search")?)?;
        let pool = spruce_db::connect_and_migrate(&settings.database, MIGRATIONS).await?;
        let listeners = Listeners::bind(&settings.grpc, &settings.common.http).await?;
        Ok(Application {
            listeners,
            pool,
            access,
            replica: settings.read_model.replica_name(),
            bus: settings.bus,
            core,
            prune_interval: settings.read_model.prune_interval,
            training_threads: settings.model.training_threads(),
            train_at_start: settings.model.train_at_start,
            cache,
        })
    }

    /// Returns the bound gRPC port.
    pub fn grpc_port(&self) -> u16 {
        self.listeners.grpc_port()
    }

    /// Returns the bound HTTP (ops) port.
    pub fn http_port(&self) -> u16 {
        self.listeners.http_port()
    }

    /// Runs until `shutdown` is cancelled, then drains in-flight calls and the consumer.
    ///
    /// # Errors
    /// Fails when a server fails.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let live = LiveModel::new();
        let consumer = Consumer::for_replica(
            self.bus,
            &self.replica,
            ReadModelEvents::new(ReadModelUpdates::new(live.clone(), self.cache.clone())),
        );
        let subscribed = consumer.status();
        let loaded = live.clone();
        let checks = vec![
            spruce_db::readiness(self.pool.clone()),
            subscribed.clone().readiness(),
            ReadinessCheck::new("read_model", move || {
                let ready = loaded.is_loaded();
                async move {
                    if ready {
                        Ok(())
                    } else {
                        Err("loading the snapshot from core".to_owned())
                    }
                }
            }),
        ];
        let mut consumer_task = tokio::spawn(consumer.run(shutdown.clone()));
        let core = self.core;
        let models = Arc::new(Models::new(
            self.pool.clone(),
            core.clone(),
            self.training_threads,
        ));
        match models.load_active().await {
            Ok(Some(version)) => tracing::info!(version, "duration model loaded"),
            Ok(None) if self.train_at_start => {
                tracing::info!("no duration model trained yet: training a first one");
                tokio::spawn(train_first(models.clone(), shutdown.clone()));
            }
            Ok(None) => tracing::info!("no duration model trained yet"),
            Err(error) => {
                tracing::error!(
                    error = format!("{error:#}"),
                    "cannot load the duration model"
                )
            }
        }
        let upkeep = tokio::spawn(live::maintain(
            live.clone(),
            core,
            subscribed,
            self.prune_interval,
            shutdown.clone(),
        ));
        let searches = Searches::new(live.clone(), self.cache);
        let routes = Routes::new(SearchServiceServer::new(SearchApi::new(
            live, searches, models,
        )));
        let served = self
            .listeners
            .serve(
                routes,
                &["spruce.search.v1.SearchService"],
                self.access,
                checks,
                shutdown.clone(),
            )
            .await;
        shutdown.cancel();
        upkeep.await.ok();
        // The replica's queue goes with the consumer's connection, deliveries in hand included.
        if tokio::time::timeout(CONSUMER_DRAIN, &mut consumer_task)
            .await
            .is_err()
        {
            consumer_task.abort();
        }
        self.pool.close().await;
        served
    }
}

/// Trains a first duration model in the background, so that quotes come from a model
/// soon after a fresh start rather than after the nightly job. Core may still be starting:
/// it asks a few times; with too little history it leaves it to the nightly job.
async fn train_first(models: Arc<Models>, shutdown: CancellationToken) {
    for attempt in 1..=10_u32 {
        match models.retrain().await {
            Ok(outcome) => {
                tracing::info!(
                    version = outcome.version,
                    promoted = outcome.promoted,
                    "first duration model trained"
                );
                return;
            }
            Err(SearchError::CoreUnavailable(reason)) => {
                tracing::info!(attempt, %reason, "core not ready for the first training yet");
            }
            Err(error) => {
                tracing::info!(%error, "no first duration model");
                return;
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(u64::from(attempt) * 3)) => {}
        }
    }
}

spruce_platform::grpc_service!(Application, Settings);
