//! Builds the scheduler from its settings and runs it: gRPC server, ops HTTP side, event
//! consumer (which also takes every event into the analytics archive), and the archive's
//! writer.

use spruce_platform::flags::Flags;
use std::sync::Arc;

use spruce_bus::Consumer;
use spruce_platform::{
    grpc::{Access, Listeners},
    settings::{self, BusSettings},
};
use spruce_proto::scheduler::v1::{
    job_service_server::JobServiceServer, notification_service_server::NotificationServiceServer,
};
use spruce_storage::Storage;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use crate::{
    domain::jobs::{self, Job},
    events::SchedulerEvents,
    grpc::{JobApi, NotificationApi},
    settings::Settings,
    store::MIGRATIONS,
    upstream::Upstreams,
    usecases::{
        archive::{self, Archiver, Archiving, ExportAnalytics},
        delivery::{self, Senders},
        jobs::{
            admin::JobAdmin,
            assign::AutoAssign,
            expire::ExpireUnconfirmed,
            reminders::BookingReminders,
            retrain::RetrainDurationModel,
            runner::{Runner, ScheduledJob},
        },
        notifications::Notifications,
    },
};

/// A built scheduler, its listeners bound.
pub struct Application {
    listeners: Listeners,
    pool: PgPool,
    settings: Settings,
    access: Access,
    jobs: Vec<ScheduledJob>,
    senders: Senders,
    upstreams: Upstreams,
    storage: Storage,
    archiver: Archiver,
}

impl Application {
    /// Connects to the database (creating and migrating it where configured) and binds the
    /// listeners; port 0 picks a free port.
    ///
    /// # Errors
    /// Fails when the database or a port is unusable.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // Users call through the gateway with their own tokens; no service calls yet.
        let access = Access {
            verifier: settings.verifier()?,
            service_rpcs: &[],
            reflection: settings.grpc.reflection(),
        };
        let pool = spruce_db::connect_and_migrate(&settings.database, MIGRATIONS).await?;
        let upstreams = Upstreams::new(
            &settings.core,
            &settings.search,
            settings.retrain.timeout,
            &settings.identity,
        )?;
        let flags = settings.common.flags();
        let storage = Storage::new(&settings.storage)?;
        let archiver = Archiver::new(pool.clone(), storage.clone(), settings.analytics.clone())?;
        let jobs = catalogue(&settings, &upstreams, &pool, &flags, &archiver)?;
        let senders = settings.senders()?.with_fault_flag(&flags);
        let listeners = Listeners::bind(&settings.grpc, &settings.common.http).await?;
        Ok(Application {
            listeners,
            pool,
            settings,
            access,
            jobs,
            senders,
            upstreams,
            storage,
            archiver,
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
        // The analytics archive takes every event from the scheduler's own queue.
        let events = SchedulerEvents::new(&self.settings.links.app_url, self.storage.clone());
        let (handler, archiver_task) = if self.settings.analytics.enabled {
            (
                Archiving::new(events, self.pool.clone()),
                Some(tokio::spawn(self.archiver.clone().run(shutdown.clone()))),
            )
        } else {
            (Archiving::off(events), None)
        };
        let consumer = Consumer::new(self.pool.clone(), self.settings.bus.clone(), handler);
        let checks = vec![
            spruce_db::readiness(self.pool.clone()),
            consumer.status().readiness(),
        ];
        let consumer_task = tokio::spawn(consumer.run(shutdown.clone()));
        tokio::spawn(retire_archive_queues(self.settings.bus.clone()));
        let runner = Runner::new(
            self.settings.database.clone(),
            settings::replica_name(&self.settings.runner.replica),
            self.settings.runner.clone(),
            self.jobs.clone(),
        );
        // Known to ListJobs and TriggerJob from the start, not from the first poll.
        runner.register(&mut *self.pool.acquire().await?).await?;
        let runner_task = tokio::spawn(runner.run(shutdown.clone()));
        let delivery_task = tokio::spawn(delivery::run(
            self.pool.clone(),
            self.senders,
            Arc::new(self.upstreams),
            self.settings.delivery.clone(),
            shutdown.clone(),
        ));
        let routes = Routes::new(NotificationServiceServer::new(NotificationApi::new(
            Notifications::new(self.pool.clone()),
        )))
        .add_service(JobServiceServer::new(JobApi::new(JobAdmin::new(
            self.pool.clone(),
            self.jobs,
        ))));
        let served = self
            .listeners
            .serve(
                routes,
                &[
                    "spruce.scheduler.v1.NotificationService",
                    "spruce.scheduler.v1.JobService",
                ],
                self.access,
                checks,
                shutdown.clone(),
            )
            .await;
        shutdown.cancel();
        consumer_task.await.ok();
        if let Some(task) = archiver_task {
            task.await.ok();
        }
        runner_task.await.ok();
        delivery_task.await.ok();
        self.pool.close().await;
        served
    }
}

/// Retires the queues the analytics archive once consumed beside the scheduler's, bound to
/// every event (`<queue_prefix>-analytics.events` and its retry and parked queues): unbound,
/// and deleted once empty. One that still holds events is left, unbound, with a warning.
async fn retire_archive_queues(bus: BusSettings) {
    let names = spruce_bus::QueueNames::new(
        &format!("{}-analytics", bus.queue_prefix),
        bus.retry_delays.len(),
    );
    match spruce_bus::retire_queues(&bus, &names, &["#"]).await {
        Ok(kept) => {
            for (queue, held) in kept {
                tracing::warn!(%queue, held, "a retired analytics queue still holds events the archive has not taken: delete it once they are not wanted (docs/operations.md)");
            }
        }
        Err(error) => tracing::warn!(error = %error, "failed to retire the analytics queues"),
    }
}

/// `write-archive [--everything]`: the archive's writer, as the archiver starts it
/// ([`archive::write_archive`]).
///
/// # Errors
/// When the database or the store cannot be reached, or writing fails.
pub async fn write_archive(settings: Settings, everything: bool) -> anyhow::Result<()> {
    let pool = spruce_db::connect(&settings.database).await?;
    let storage = Storage::new(&settings.storage)?;
    archive::write_archive(pool, storage, settings.analytics, everything).await
}

/// The jobs this replica runs, with their schedules and switches from `settings`.
///
/// # Errors
/// Names the job whose schedule is unusable.
fn catalogue(
    settings: &Settings,
    upstreams: &Upstreams,
    pool: &PgPool,
    flags: &Flags,
    archiver: &Archiver,
) -> Result<Vec<ScheduledJob>, settings::SettingsError> {
    let job = |name: &'static str, job: Arc<dyn Job>| {
        let (schedule, enabled) = settings.job(name)?;
        Ok::<_, settings::SettingsError>(ScheduledJob {
            name,
            schedule,
            enabled,
            job,
        })
    };
    Ok(vec![
        job(
            jobs::BOOKING_REMINDERS,
            Arc::new(BookingReminders::new(
                pool.clone(),
                chrono::Duration::from_std(settings.reminders.lead).map_err(|_| {
                    settings::SettingsError::invalid("reminders.lead", "is too long")
                })?,
            )),
        )?,
        job(
            jobs::AUTO_ASSIGN,
            Arc::new(AutoAssign::new(
                upstreams.clone(),
                settings.matching.assign_settings()?,
                flags.clone(),
            )),
        )?,
        job(
            jobs::EXPIRE_UNCONFIRMED,
            Arc::new(ExpireUnconfirmed::new(upstreams.clone())),
        )?,
        job(
            jobs::RETRAIN_DURATION_MODEL,
            Arc::new(RetrainDurationModel::new(upstreams.clone())),
        )?,
        job(
            jobs::EXPORT_ANALYTICS,
            Arc::new(ExportAnalytics::new(archiver.clone())),
        )?,
    ])
}

spruce_platform::grpc_service!(Application, Settings);
