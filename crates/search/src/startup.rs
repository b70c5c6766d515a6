//! Builds search from its settings and runs it.

use spruce_platform::{
    db::{self, MigrationSource},
    grpc::{Access, Listeners},
    ops::ReadinessCheck,
};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use crate::settings::Settings;

/// Embedded migrations, applied by `spruce-search migrate` and at start in development.
pub const MIGRATIONS: &[MigrationSource] = &[(
    1,
    "model versions",
    include_str!("../migrations/0001_model_versions.sql"),
)];

/// A built search service, its listeners bound.
pub struct Application {
    listeners: Listeners,
    pool: PgPool,
    access: Access,
}

impl Application {
    /// Connects to the database (creating and migrating it where configured) and binds the
    /// listeners; port 0 picks a free port.
    ///
    /// # Errors
    /// Fails when the database or a port is unusable.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let access = Access {
            verifier: settings.verifier()?,
            service_rpcs: &[],
            reflection: settings.grpc.reflection(),
        };
        let pool = db::connect_and_migrate(&settings.database, MIGRATIONS).await?;
        let listeners = Listeners::bind(&settings.grpc, &settings.http).await?;
        Ok(Application {
            listeners,
            pool,
            access,
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

    /// Runs until `shutdown` is cancelled, then drains in-flight calls.
    ///
    /// # Errors
    /// Fails when a server fails.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let checks = vec![ReadinessCheck::postgres(self.pool.clone())];
        let served = self
            .listeners
            .serve(Routes::default(), &[], self.access, checks, shutdown)
            .await;
        self.pool.close().await;
        served
    }
}
