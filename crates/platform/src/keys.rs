//! Ed25519 keys in PEM form, and the built-in development keys.
//!
//! A development key is recognised by its public key bytes, not by its text, so the same key
//! read from a file, re-wrapped or re-encoded is still refused where production-like
//! settings are required.

use base64::Engine as _;
use ed25519_dalek::{
    SigningKey, VerifyingKey,
    pkcs8::{DecodePrivateKey as _, DecodePublicKey as _},
};
use jsonwebtoken::{DecodingKey, EncodingKey};
use secrecy::{ExposeSecret as _, SecretString};

/// The built-in development keys. They are public (they are in this file), so settings
/// refuse them in production-like environments (see [`crate::settings::production_like`]).
pub mod dev {
    /// Core's development key for users' access tokens.
    pub const CORE_PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIHfcrIpsis1ZpfiTKTx4t7GarH6TX0ChNFoamJT3Leim
-----END PRIVATE KEY-----
";
    /// The public half of [`CORE_PRIVATE_KEY`].
    pub const CORE_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEA8+tZigaohbgU/Ls7+zJ6f5HMElcF8ZUT1G5SiSduhKo=
-----END PUBLIC KEY-----
";
    /// The gateway's development service key.
    pub const GATEWAY_PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIG5DMoZdv2pPvPIpCxy6cYZDglu1mLs4L46vsDd3rJ8h
-----END PRIVATE KEY-----
";
    /// The public half of [`GATEWAY_PRIVATE_KEY`].
    pub const GATEWAY_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAwVr6+vqgnimHjRIxn9po+hR9HYlyuAqrAoTTZUVLmic=
-----END PUBLIC KEY-----
";
    /// The scheduler's development service key.
    pub const SCHEDULER_PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEINOY5WoDo5ksPC8jKk1gbIinsLtzgvfY0IcWHy5m7vWA
-----END PRIVATE KEY-----
";
    /// The public half of [`SCHEDULER_PRIVATE_KEY`].
    pub const SCHEDULER_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEA2aNdE1UL9bRFTxXrGKw6y2py+Nxw+uMrBvwsQo8wBCc=
-----END PUBLIC KEY-----
";
    /// The search service's development service key.
    pub const SEARCH_PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIHPeRD8TxTd27RjHaNj2nsrxHGS/Um3yduFDshthCw2p
-----END PRIVATE KEY-----
";
    /// The public half of [`SEARCH_PRIVATE_KEY`].
    pub const SEARCH_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAAYElqY/qigN8ulNXS20U2W2fbKLFsPp6Fv13r46Te58=
-----END PUBLIC KEY-----
";

    /// Every development public key.
    pub const PUBLIC_KEYS: [&str; 4] = [
        CORE_PUBLIC_KEY,
        GATEWAY_PUBLIC_KEY,
        SCHEDULER_PUBLIC_KEY,
        SEARCH_PUBLIC_KEY,
    ];
}

/// Why a key could not be read. Never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("is not PEM (expected -----BEGIN {0}-----)")]
    NotPem(&'static str),
    #[error("is not an Ed25519 {0} key")]
    NotEd25519(&'static str),
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let encoded = base64::engine::general_purpose::STANDARD.encode(self.0);
        write!(formatter, "PublicKey({encoded})")
    }
}

impl PublicKey {
    /// Reads a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
    ///
    /// # Errors
    /// Fails when the text is not PEM or not an Ed25519 public key.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let der = pem_body(pem, "PUBLIC KEY")?;
        let key =
            VerifyingKey::from_public_key_der(&der).map_err(|_| KeyError::NotEd25519("public"))?;
        Ok(PublicKey(key.to_bytes()))
    }

    /// Returns whether this is one of the built-in development keys.
    pub fn is_development(&self) -> bool {
        dev::PUBLIC_KEYS
            .iter()
            .filter_map(|pem| PublicKey::from_pem(pem).ok())
            .any(|dev_key| dev_key == *self)
    }

    /// Returns the key for verifying JWT signatures.
    pub fn decoding_key(&self) -> DecodingKey {
        DecodingKey::from_ed_der(&self.0)
    }
}

/// An Ed25519 private key (PKCS#8). Its text stays secret; its public half is known.
#[derive(Clone)]
pub struct PrivateKey {
    encoding: EncodingKey,
    public: PublicKey,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "PrivateKey(public: {:?})", self.public)
    }
}

impl PrivateKey {
    /// Reads a PEM `PRIVATE KEY` (PKCS#8).
    ///
    /// # Errors
    /// Fails when the text is not PEM or not an Ed25519 private key.
    pub fn from_pem(pem: &SecretString) -> Result<Self, KeyError> {
        let text = pem.expose_secret();
        let der = pem_body(text, "PRIVATE KEY")?;
        let signing =
            SigningKey::from_pkcs8_der(&der).map_err(|_| KeyError::NotEd25519("private"))?;
        let encoding = EncodingKey::from_ed_pem(text.as_bytes())
            .map_err(|_| KeyError::NotEd25519("private"))?;
        Ok(PrivateKey {
            encoding,
            public: PublicKey(signing.verifying_key().to_bytes()),
        })
    }

    /// Returns the public half.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// Returns the key for signing JWTs.
    pub fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }
}

/// Decodes the base64 body between `-----BEGIN {label}-----` and `-----END {label}-----`.
fn pem_body(pem: &str, label: &'static str) -> Result<Vec<u8>, KeyError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body = pem
        .split_once(&begin)
        .and_then(|(_, rest)| rest.split_once(&end))
        .map(|(body, _)| body)
        .ok_or(KeyError::NotPem(label))?;
    let base64: String = body.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(base64)
        .map_err(|_| KeyError::NotPem(label))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dev_private_key_matches_its_public_key() {
        for (private, public) in [
            (dev::CORE_PRIVATE_KEY, dev::CORE_PUBLIC_KEY),
            (dev::GATEWAY_PRIVATE_KEY, dev::GATEWAY_PUBLIC_KEY),
            (dev::SCHEDULER_PRIVATE_KEY, dev::SCHEDULER_PUBLIC_KEY),
            (dev::SEARCH_PRIVATE_KEY, dev::SEARCH_PUBLIC_KEY),
        ] {
            let private = PrivateKey::from_pem(&SecretString::from(private)).unwrap();
            assert_eq!(private.public_key(), PublicKey::from_pem(public).unwrap());
            assert!(private.public_key().is_development());
        }
    }

    #[test]
    fn a_dev_key_is_recognised_however_its_pem_is_wrapped() {
        let body = dev::CORE_PUBLIC_KEY
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect::<String>();
        let rewrapped = format!(
            "\n\n-----BEGIN PUBLIC KEY-----\r\n{}\r\n{}\r\n-----END PUBLIC KEY-----\r\n",
            &body[..20],
            &body[20..]
        );
        assert!(PublicKey::from_pem(&rewrapped).unwrap().is_development());
    }

    #[test]
    fn a_fresh_key_is_not_a_development_key() {
        let fresh = SigningKey::from_bytes(&[7; 32]).verifying_key().to_bytes();
        assert!(!PublicKey(fresh).is_development());
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        let error = PublicKey::from_pem("hello").unwrap_err().to_string();
        assert!(error.contains("not PEM"), "{error}");
        let error =
            PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
                .unwrap_err()
                .to_string();
        assert!(error.contains("Ed25519"), "{error}");
        let private = SecretString::from(dev::CORE_PUBLIC_KEY);
        assert!(PrivateKey::from_pem(&private).is_err());
    }
}
