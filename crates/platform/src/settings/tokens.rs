//! Keys and tokens: how a service verifies users' and other services' tokens, and signs
//! its own.

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::Deserialize;

use super::{SettingsError, private_key, production_like, public_key};
use crate::{
    auth::{ServiceTokenSigner, TokenVerifier},
    keys::{self, PublicKey},
};

/// How to verify users' access tokens (core signs them): `[auth]` of every service but core.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct UserTokenSettings {
    /// PEM-encoded Ed25519 public key of core's signing key (not a secret).
    pub public_key: String,
    pub issuer: String,
    pub audience: String,
}

impl Default for UserTokenSettings {
    fn default() -> Self {
        UserTokenSettings {
            public_key: keys::dev::CORE_PUBLIC_KEY.to_owned(),
            issuer: "spruce".to_owned(),
            audience: "spruce-mobile".to_owned(),
        }
    }
}

impl UserTokenSettings {
    /// Returns a verifier of users' access tokens for the service `own_name` that also
    /// accepts the service tokens of `services` (see [`CallerSettings::service_keys`])
    /// addressed to it.
    ///
    /// # Errors
    /// Names `auth.public_key` when it is unusable here.
    pub fn verifier(
        &self,
        services: &[(String, PublicKey)],
        own_name: &str,
    ) -> Result<TokenVerifier, SettingsError> {
        let key = public_key("auth.public_key", &self.public_key)?;
        Ok(TokenVerifier::new(
            &key,
            &self.issuer,
            &self.audience,
            services,
            own_name,
        ))
    }
}

/// The services a gRPC server accepts service tokens from: `[callers.service_keys]`, one
/// PEM public key per service name (`gateway_file = "/path"` reads it from a file). By
/// default every service's development key locally, and none where production-like.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CallerSettings {
    pub service_keys: BTreeMap<String, String>,
}

impl Default for CallerSettings {
    fn default() -> Self {
        if production_like() {
            return CallerSettings {
                service_keys: BTreeMap::new(),
            };
        }
        // Core signs its own service tokens with the key it signs users' tokens with.
        let service_keys = [
            ("core", keys::dev::CORE_PUBLIC_KEY),
            ("gateway", keys::dev::GATEWAY_PUBLIC_KEY),
            ("scheduler", keys::dev::SCHEDULER_PUBLIC_KEY),
            ("search", keys::dev::SEARCH_PUBLIC_KEY),
        ]
        .into_iter()
        .map(|(name, key)| (name.to_owned(), key.to_owned()))
        .collect();
        CallerSettings { service_keys }
    }
}

impl CallerSettings {
    /// Returns each named service with its public key.
    ///
    /// # Errors
    /// Names the first `callers.service_keys.<name>` that is unusable here.
    pub fn service_keys(&self) -> Result<Vec<(String, PublicKey)>, SettingsError> {
        self.service_keys
            .iter()
            .map(|(name, pem)| {
                let key = public_key(&format!("callers.service_keys.{name}"), pem)?;
                Ok((name.clone(), key))
            })
            .collect()
    }
}

/// A service's own signing key, for the calls it makes on its own behalf: `[identity]`.
#[derive(Debug, Clone, Deserialize)]
pub struct IdentitySettings {
    /// PEM-encoded Ed25519 private key (PKCS#8); use `private_key_file` in deployments.
    pub private_key: SecretString,
}

impl IdentitySettings {
    /// Returns the settings holding the built-in development key `pem`.
    pub fn development(pem: &str) -> Self {
        IdentitySettings {
            private_key: SecretString::from(pem),
        }
    }

    /// Returns a signer of `service`'s tokens.
    ///
    /// # Errors
    /// Names `identity.private_key` when it is unusable here.
    pub fn signer(&self, service: &str) -> Result<ServiceTokenSigner, SettingsError> {
        let key = private_key("identity.private_key", &self.private_key)?;
        Ok(ServiceTokenSigner::new(service, key))
    }
}
