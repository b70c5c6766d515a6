//! gRPC server scaffolding: the standard health service, server reflection (a setting), a
//! span and a latency metric per call (continuing the caller's trace), authentication of
//! every call but health checks, and graceful shutdown that drains in-flight calls.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use anyhow::Context as _;
use spruce_domain::reason::Reason;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{
    Status,
    service::Routes,
    transport::{Server, server::TcpIncoming},
};
use tonic_health::ServingStatus;
use tower::{Layer, Service};
use tracing::Instrument as _;

use crate::{
    auth::{TokenError, TokenVerifier, bearer_token},
    identity::Principal,
    metrics::RPC_SERVER_DURATION,
    ops::{self, ReadinessCheck},
    propagation,
    settings::ListenSettings,
    status::status,
};

/// Wraps `message` in a request to another service carrying the trace context and `token`
/// (a user's access token or the caller's service token) as its bearer.
pub fn request_with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    propagation::inject_into_metadata(request.metadata_mut());
    // A JWT is base64url and dots: always a valid metadata value.
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// An RPC a service may call on its own behalf, with a service token.
#[derive(Debug, Clone, Copy)]
pub struct ServiceRpc {
    /// The calling service's name, as its token's `sub` says.
    pub caller: &'static str,
    /// The full method path, e.g. `/spruce.core.v1.UserService/Register`.
    pub path: &'static str,
}

/// Who may call a gRPC server: users with a valid access token on any RPC (the RPC itself
/// then decides what their role may do), services with a valid service token only on the
/// RPCs listed for them. Health checks are open to anyone.
#[derive(Clone)]
pub struct Access {
    pub verifier: TokenVerifier,
    pub service_rpcs: &'static [ServiceRpc],
    /// Serve gRPC server reflection (open, like health): local development only.
    pub reflection: bool,
}

/// Serves `routes` plus health (and reflection, if `access` allows it) on `listener` until
/// `shutdown` is cancelled.
///
/// `served` names the fully qualified services (e.g. `spruce.core.v1.UserService`) that
/// the health service reports as serving; the whole server reports under `""` too.
///
/// # Errors
/// Fails when reflection cannot be built or the transport fails.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    served: &[&'static str],
    access: Access,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (reporter, health) = tonic_health::server::health_reporter();
    for name in served {
        reporter
            .set_service_status(name, ServingStatus::Serving)
            .await;
    }
    let reflection = if access.reflection {
        Some(
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(spruce_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .build_v1()?,
        )
    } else {
        None
    };
    let served = served.to_vec();
    let stopping = async move {
        // Tell load balancers and probes first (as soon as the process drains), then stop
        // accepting and finish the calls in flight.
        tokio::select! {
            () = crate::shutdown::draining() => {}
            () = shutdown.cancelled() => {}
        }
        reporter
            .set_service_status("", ServingStatus::NotServing)
            .await;
        for name in served {
            reporter
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        shutdown.cancelled().await;
    };
    Server::builder()
        .layer(RpcTelemetryLayer)
        .layer(AuthenticationLayer { access })
        .add_routes(routes)
        .add_service(health)
        .add_optional_service(reflection)
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            stopping,
        )
        .await?;
    Ok(())
}

/// Opens a server span per call, continuing the caller's `traceparent`, and records
/// `rpc_server_duration_seconds`.
#[derive(Debug, Clone, Copy)]
struct RpcTelemetryLayer;

impl<S> Layer<S> for RpcTelemetryLayer {
    type Service = RpcTelemetry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcTelemetry { inner }
    }
}

#[derive(Debug, Clone)]
struct RpcTelemetry<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// Returns the inner service that was polled ready, leaving a fresh clone in its place: the
/// ready one must take the call (tower's contract), and the future must own it.
fn take_ready<S: Clone>(inner: &mut S) -> S {
    let fresh = inner.clone();
    std::mem::replace(inner, fresh)
}

impl<S, RequestBody, ResponseBody> Service<http::Request<RequestBody>> for RpcTelemetry<S>
where
    S: Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    RequestBody: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
        let path = request.uri().path().trim_start_matches('/').to_owned();
        let (service, method) = path.split_once('/').unwrap_or((path.as_str(), ""));
        let (service, method) = (service.to_owned(), method.to_owned());
        // Probes and tooling call health and reflection all day: metrics, but no traces.
        let span = if service.starts_with("grpc.") {
            tracing::Span::none()
        } else {
            tracing::info_span!(
                "rpc",
                otel.name = %path,
                otel.kind = "server",
                rpc.system = "grpc",
                rpc.service = %service,
                rpc.method = %method,
                rpc.grpc.status_code = tracing::field::Empty,
            )
        };
        propagation::set_parent_from_http(&span, request.headers());
        let mut inner = take_ready(&mut self.inner);
        let started = Instant::now();
        Box::pin(async move {
            let result = inner.call(request).instrument(span.clone()).await;
            let code = match &result {
                // Unary errors are sent trailers-only, so their status is in the headers;
                // a missing header means the call went on to succeed in the trailers.
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.parse::<i32>().ok())
                    .map_or(tonic::Code::Ok, tonic::Code::from),
                Err(_) => tonic::Code::Internal,
            };
            span.record("rpc.grpc.status_code", code as i32);
            RPC_SERVER_DURATION
                .with_label_values(&[service.as_str(), method.as_str(), &format!("{code:?}")])
                .observe(started.elapsed().as_secs_f64());
            result
        })
    }
}

/// Verifies the `authorization` token of every call but health checks (and reflection,
/// where it is served), refuses what [`Access`] does not allow, and hands the verified
/// [`Principal`] to the RPC in the request's extensions (where
/// [`crate::identity::Caller::of`] finds a user).
#[derive(Clone)]
struct AuthenticationLayer {
    access: Access,
}

impl<S> Layer<S> for AuthenticationLayer {
    type Service = Authentication<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authentication {
            inner,
            access: self.access.clone(),
        }
    }
}

#[derive(Clone)]
struct Authentication<S> {
    inner: S,
    access: Access,
}

impl Access {
    /// Returns who may make this call, or the status refusing it.
    fn admit(&self, path: &str, headers: &http::HeaderMap) -> Result<Option<Principal>, Status> {
        if path.starts_with("/grpc.health.v1.Health/")
            || (self.reflection && path.starts_with("/grpc.reflection."))
        {
            return Ok(None);
        }
        let token = bearer_token(headers.get(http::header::AUTHORIZATION))
            .ok_or_else(|| unauthenticated("a bearer token is required in authorization"))?;
        let principal = self.verifier.verify(token).map_err(|error| match error {
            TokenError::Expired => unauthenticated("the token has expired"),
            TokenError::Invalid => unauthenticated("the token is invalid"),
        })?;
        if let Principal::Service(name) = &principal {
            let allowed = self
                .service_rpcs
                .iter()
                .any(|rpc| rpc.caller == &**name && rpc.path == path);
            if !allowed {
                return Err(status(
                    Reason::Forbidden,
                    format!("the {name} service may not call {path}"),
                    &[],
                ));
            }
        }
        Ok(Some(principal))
    }
}

fn unauthenticated(message: &str) -> Status {
    status(Reason::Unauthenticated, message, &[])
}

impl<S, RequestBody, ResponseBody> Service<http::Request<RequestBody>> for Authentication<S>
where
    S: Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RequestBody: Send + 'static,
    ResponseBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: http::Request<RequestBody>) -> Self::Future {
        match self.access.admit(request.uri().path(), request.headers()) {
            Err(status) => Box::pin(std::future::ready(Ok(status.into_http()))),
            Ok(principal) => {
                if let Some(principal) = principal {
                    request.extensions_mut().insert(principal);
                }
                let mut inner = take_ready(&mut self.inner);
                Box::pin(async move { inner.call(request).await })
            }
        }
    }
}

/// The two listeners of a gRPC service: the gRPC port and the ops HTTP port.
pub struct Listeners {
    grpc: TcpListener,
    http: TcpListener,
}

impl Listeners {
    /// Binds both ports; port 0 picks a free one.
    ///
    /// # Errors
    /// Fails when an address is invalid or a port is taken.
    pub async fn bind(grpc: &ListenSettings, http: &ListenSettings) -> anyhow::Result<Self> {
        let grpc = TcpListener::bind(grpc.address("grpc")?)
            .await
            .with_context(|| format!("failed to bind the gRPC port {}", grpc.port))?;
        let http = TcpListener::bind(http.address("http")?)
            .await
            .with_context(|| format!("failed to bind the HTTP port {}", http.port))?;
        Ok(Listeners { grpc, http })
    }

    /// Returns the bound gRPC port.
    pub fn grpc_port(&self) -> u16 {
        self.grpc.local_addr().map_or(0, |address| address.port())
    }

    /// Returns the bound HTTP port.
    pub fn http_port(&self) -> u16 {
        self.http.local_addr().map_or(0, |address| address.port())
    }

    /// Serves `routes` (see [`serve`]) and the ops side with `checks` until `shutdown` is
    /// cancelled and both have drained.
    ///
    /// # Errors
    /// Fails when either server fails; the other is then stopped too.
    pub async fn serve(
        self,
        routes: Routes,
        served: &[&'static str],
        access: Access,
        checks: Vec<ReadinessCheck>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let grpc = async {
            let result = serve(self.grpc, routes, served, access, shutdown.clone()).await;
            shutdown.cancel();
            result
        };
        let http = async {
            let result = ops::serve(self.http, ops::router(checks), shutdown.clone()).await;
            shutdown.cancel();
            result
        };
        let (grpc, http) = tokio::join!(grpc, http);
        grpc?;
        http?;
        Ok(())
    }
}
