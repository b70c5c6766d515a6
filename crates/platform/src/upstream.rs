//! Channels to another Spruce service, balanced over its replicas.
//!
//! gRPC keeps one HTTP/2 connection open and sends every call over it. Through a ClusterIP
//! Service that connection is one pod's, so a caller would stick to one replica and an
//! autoscaler's new pods would get no traffic. So for a DNS name (a headless Service: one
//! address per ready pod) the channel holds a connection to every address the name
//! resolves to, spreads calls over them (tower's power of two choices), and resolves the
//! name again every [`REFRESH`]: new pods join, gone ones leave. A URL with an IP address
//! is one plain connection.

use std::{
    collections::BTreeSet, future::Future, io, net::IpAddr, net::SocketAddr, time::Duration,
};

use anyhow::Context as _;
use http::Uri;
use tokio::sync::mpsc::Sender;
use tonic::transport::{Channel, Endpoint, channel::Change};

/// How often a name is resolved again.
pub const REFRESH: Duration = Duration::from_secs(5);

/// How long a connection may take, and each call (none: the caller bounds its calls).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    pub(crate) request: Option<Duration>,
}

impl crate::settings::Upstream {
    /// A lazily connecting channel to this upstream with its connect timeout; the caller
    /// bounds each call (with `timeout`, or longer for a call known to be long).
    ///
    /// # Errors
    /// Fails when the URL is not a URL with a host.
    pub fn channel(&self) -> anyhow::Result<Channel> {
        channel(
            &self.url,
            Timeouts {
                connect: self.connect_timeout,
                request: None,
            },
        )
    }

    /// A lazily connecting channel to this upstream on which every call ends after
    /// `timeout`.
    ///
    /// # Errors
    /// Fails when the URL is not a URL with a host.
    pub fn bounded_channel(&self) -> anyhow::Result<Channel> {
        channel(
            &self.url,
            Timeouts {
                connect: self.connect_timeout,
                request: Some(self.timeout),
            },
        )
    }
}

/// A lazily connecting channel to `url` (`http://host:port`), balanced over every address
/// of `host` when it is a name. Must be called within the Tokio runtime (the resolver runs
/// on it until the channel is dropped).
///
/// # Errors
/// Fails when `url` is not a URL with a host.
fn channel(url: &str, timeouts: Timeouts) -> anyhow::Result<Channel> {
    let uri: Uri = url
        .parse()
        .with_context(|| format!("{url:?} is not a URL"))?;
    let host = uri
        .host()
        .with_context(|| format!("{url:?} has no host"))?
        .trim_matches(['[', ']'])
        .to_owned();
    if host.parse::<IpAddr>().is_ok() {
        return Ok(endpoint(&uri, None, timeouts)?.connect_lazy());
    }
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    });
    Ok(balanced(
        move || {
            let host = host.clone();
            async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) }
        },
        uri,
        timeouts,
        REFRESH,
    ))
}

/// The endpoint for `uri`, or for one `address` of its host (keeping `uri` as the origin,
/// so calls still name the service).
fn endpoint(
    uri: &Uri,
    address: Option<SocketAddr>,
    timeouts: Timeouts,
) -> anyhow::Result<Endpoint> {
    let mut endpoint = match address {
        None => Endpoint::from(uri.clone()),
        Some(address) => {
            let scheme = uri.scheme_str().unwrap_or("http");
            Endpoint::from_shared(format!("{scheme}://{address}"))?.origin(uri.clone())
        }
    };
    endpoint = endpoint.connect_timeout(timeouts.connect);
    if let Some(request) = timeouts.request {
        endpoint = endpoint.timeout(request);
    }
    Ok(endpoint)
}

/// A channel over the addresses `resolve` finds, asked again every `every`.
pub(crate) fn balanced<R, F>(resolve: R, uri: Uri, timeouts: Timeouts, every: Duration) -> Channel
where
    R: Fn() -> F + Send + 'static,
    F: Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'static,
{
    let (channel, changes) = Channel::balance_channel(64);
    tokio::spawn(follow(resolve, uri, timeouts, every, changes));
    channel
}

/// Keeps the balancer's endpoints those `resolve` finds, until the channel is dropped. A
/// failed resolution keeps the last addresses (a DNS hiccup must not empty the channel).
async fn follow<R, F>(
    resolve: R,
    uri: Uri,
    timeouts: Timeouts,
    every: Duration,
    changes: Sender<Change<SocketAddr, Endpoint>>,
) where
    R: Fn() -> F,
    F: Future<Output = io::Result<Vec<SocketAddr>>>,
{
    let mut current: BTreeSet<SocketAddr> = BTreeSet::new();
    loop {
        match resolve().await {
            Ok(found) => {
                let found: BTreeSet<SocketAddr> = found.into_iter().collect();
                let mut updates = Vec::new();
                updates.extend(current.difference(&found).map(|gone| Change::Remove(*gone)));
                for new in found.difference(&current) {
                    match endpoint(&uri, Some(*new), timeouts) {
                        Ok(endpoint) => updates.push(Change::Insert(*new, endpoint)),
                        Err(error) => {
                            tracing::warn!(%uri, address = %new, %error, "an upstream address makes no endpoint")
                        }
                    }
                }
                for update in updates {
                    if changes.send(update).await.is_err() {
                        return;
                    }
                }
                current = found;
            }
            Err(error) => {
                tracing::warn!(%uri, %error, "could not resolve an upstream; keeping its last addresses");
            }
        }
        tokio::select! {
            () = changes.closed() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    };

    use tokio_util::sync::CancellationToken;
    use tonic::transport::Server;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    use super::*;

    /// A health service at `address` counting the calls it serves.
    async fn replica(
        address: SocketAddr,
        stop: CancellationToken,
    ) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind(address).await.expect("bound");
        let address = listener.local_addr().expect("an address");
        let served = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&served);
        let (_, health) = tonic_health::server::health_reporter();
        let count = move |request: tonic::Request<()>| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(request)
        };
        tokio::spawn(
            Server::builder()
                .layer(tonic::service::InterceptorLayer::new(count))
                .add_service(health)
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener),
                    stop.cancelled_owned(),
                ),
        );
        (address, served)
    }

    const TIMEOUTS: Timeouts = Timeouts {
        connect: Duration::from_secs(1),
        request: Some(Duration::from_secs(2)),
    };

    async fn check(channel: &Channel) -> Result<(), tonic::Status> {
        HealthClient::new(channel.clone())
            .check(HealthCheckRequest::default())
            .await
            .map(|_| ())
    }

    #[tokio::test]
    async fn calls_spread_over_every_replica_and_follow_the_addresses() {
        let stop = CancellationToken::new();
        // Two replicas on one port, as a headless Service's pods are: two loopback addresses.
        let (first, first_served) = replica("127.0.0.1:0".parse().unwrap(), stop.clone()).await;
        let second_address = SocketAddr::new("127.0.0.2".parse().unwrap(), first.port());
        let (second, second_served) = replica(second_address, stop.clone()).await;
        let addresses = Arc::new(Mutex::new(vec![first, second]));
        let resolved = Arc::clone(&addresses);
        let channel = balanced(
            move || {
                let found = resolved.lock().unwrap().clone();
                async move { Ok(found) }
            },
            format!("http://core.spruce.internal:{}", first.port())
                .parse()
                .unwrap(),
            TIMEOUTS,
            Duration::from_millis(50),
        );
        for _ in 0..40 {
            check(&channel).await.expect("served");
        }
        let (one, two) = (
            first_served.load(Ordering::SeqCst),
            second_served.load(Ordering::SeqCst),
        );
        assert_eq!(one + two, 40);
        assert!(one > 0 && two > 0, "both replicas serve: {one} and {two}");

        // The second replica leaves the name: after the next resolution it gets no call.
        addresses
            .lock()
            .unwrap()
            .retain(|address| *address == first);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = second_served.load(Ordering::SeqCst);
        for _ in 0..20 {
            check(&channel).await.expect("served by the first");
        }
        assert_eq!(second_served.load(Ordering::SeqCst), before);
        stop.cancel();
    }

    #[tokio::test]
    async fn a_name_is_resolved_through_dns_and_an_ip_needs_no_resolving() {
        let stop = CancellationToken::new();
        let (address, served) = replica("127.0.0.1:0".parse().unwrap(), stop.clone()).await;
        let by_name = channel(&format!("http://localhost:{}", address.port()), TIMEOUTS).unwrap();
        check(&by_name)
            .await
            .expect("served through localhost's address");
        let by_ip = channel(&format!("http://{address}"), TIMEOUTS).unwrap();
        check(&by_ip).await.expect("served");
        assert_eq!(served.load(Ordering::SeqCst), 2);
        assert!(channel("not a url", TIMEOUTS).is_err());
        stop.cancel();
    }
}
