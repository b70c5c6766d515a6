//! Redis as every service reaches it: one lazily connecting, self-reconnecting connection
//! whose connects and responses are bounded by `redis.timeout`, over TLS for a
//! `rediss://` URL.

use redis::{
    Client, TlsCertificates,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use secrecy::ExposeSecret as _;

use crate::settings::RedisSettings;

/// Prepares the connection; nothing is contacted yet, so a service starts without Redis.
///
/// # Errors
/// Fails when the URL is malformed.
pub fn connect(settings: &RedisSettings) -> anyhow::Result<ConnectionManager> {
    let timeout = settings.timeout;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1);
    Ok(ConnectionManager::new_lazy_with_config(
        client(settings)?,
        config,
    )?)
}

/// The client the connection is made from, for connections of another kind (a
/// subscription, say); the caller bounds their waits by `redis.timeout`.
///
/// # Errors
/// Fails when the URL is malformed.
pub fn client(settings: &RedisSettings) -> anyhow::Result<Client> {
    let url = settings.url.expose_secret();
    Ok(match &settings.ca {
        Some(ca) => Client::build_with_tls(
            url,
            TlsCertificates {
                client_tls: None,
                root_cert: Some(ca.as_bytes().to_vec()),
            },
        )?,
        None => Client::open(url)?,
    })
}
