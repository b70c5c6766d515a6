//! Builds the gateway from its settings and runs it.

use std::net::SocketAddr;

use anyhow::Context as _;
use axum::serve::ListenerExt as _;
use spruce_platform::ops::{self, ReadinessCheck};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use utoipa_swagger_ui::SwaggerUi;

use crate::{
    clients::{Upstreams, check_health},
    revocations::Revocations,
    routes::{self, AppState},
    settings::Settings,
    throttle::Throttle,
    uploads::Uploads,
};
use spruce_storage::Storage;

/// A built gateway, its listener bound.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    revocations: Revocations,
}

impl Application {
    /// Prepares the upstream channels and binds the listener; port 0 picks a free port.
    ///
    /// # Errors
    /// Fails when the public key, an upstream URL or the port is unusable.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // Mobile clients only: no service calls the gateway.
        let verifier = settings.auth.verifier(&[], "gateway")?;
        let upstreams = Upstreams::new(&settings, settings.identity.signer("gateway")?)?;
        let checks = upstreams
            .health_targets()
            .into_iter()
            .map(|(name, channel)| ReadinessCheck::new(name, move || check_health(channel.clone())))
            .collect();
        let throttle = Throttle::new(&settings)?;
        let revocations = Revocations::new(&settings.redis)?;
        let state = AppState {
            verifier,
            upstreams,
            throttle,
            revocations: revocations.clone(),
            trusted_proxies: settings.trusted_proxies,
            flags: settings.common.flags(),
            uploads: Uploads::new(
                Storage::new(&settings.storage)?,
                settings.uploads.concurrency,
                settings.uploads.body_timeout,
            ),
        };
        let (api, document) = routes::api(state);
        // Swagger UI's assets are compiled in (no CDN), so /docs works offline; it also
        // serves the document at /openapi.json.
        let docs = SwaggerUi::new("/docs").url("/openapi.json", document);
        let router = api.merge(docs).merge(ops::router(checks));
        let listener = TcpListener::bind(settings.common.http.address("http")?)
            .await
            .with_context(|| {
                format!("failed to bind the HTTP port {}", settings.common.http.port)
            })?;
        Ok(Application {
            listener,
            router,
            revocations,
        })
    }

    /// Returns the bound HTTP port.
    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map_or(0, |address| address.port())
    }

    /// Serves until `shutdown` is cancelled, then drains open requests.
    ///
    /// # Errors
    /// Fails when the listener fails.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tokio::spawn(self.revocations.follow(shutdown.clone()));
        // The peer address feeds login throttling per client.
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener.tap_io(ops::no_delay), service)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await?;
        Ok(())
    }
}
