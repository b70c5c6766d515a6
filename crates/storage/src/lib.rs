//! Object storage for files the services keep (cleaners' photos and documents, the analytics
//! archive), through `object_store`: a local folder (`file:///…`, the default) or an S3
//! bucket (`s3://bucket`, with the service's IAM role in AWS). Objects are named by a
//! [`Key`]; a store hands out a URL to read an object: S3 a pre-signed URL that expires,
//! a local folder its `public_url` (the gateway serves it).

pub mod media;

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use futures_util::TryStreamExt as _;
use object_store::{
    ObjectStore, ObjectStoreExt as _, PutPayload,
    aws::{AmazonS3, AmazonS3Builder},
    local::LocalFileSystem,
    path::Path,
    signer::Signer as _,
};
use serde::Deserialize;
use spruce_platform::settings::{SettingsError, Validate, duration};

/// Where objects go: `[storage]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StorageSettings {
    /// `file:///absolute/folder` or `s3://bucket` (a prefix may follow: `s3://bucket/spruce`).
    pub url: String,
    /// A local store's objects are read at `<public_url>/<key>`.
    pub public_url: String,
    /// How long a pre-signed S3 URL stays valid.
    #[serde(deserialize_with = "duration")]
    pub url_ttl: Duration,
    /// S3: the region (empty: `AWS_REGION` / `AWS_DEFAULT_REGION`).
    pub region: String,
    /// S3: another endpoint than AWS's (an S3-compatible server), path-style requests.
    pub endpoint: String,
    /// S3: static keys for such a server; empty in AWS, where the IAM role of the service
    /// account (IRSA) is used.
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl Default for StorageSettings {
    fn default() -> Self {
        StorageSettings {
            url: "file:///var/tmp/spruce-objects".to_owned(),
            public_url: "http://127.0.0.1:8080/v1/files".to_owned(),
            url_ttl: Duration::from_secs(15 * 60),
            region: String::new(),
            endpoint: String::new(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
        }
    }
}

impl Validate for StorageSettings {
    fn validate(&self) -> Result<(), SettingsError> {
        Location::parse(&self.url).map(|_| ())?;
        if self.url_ttl.is_zero() || self.url_ttl > Duration::from_secs(7 * 24 * 3600) {
            return Err(SettingsError::invalid(
                "storage.url_ttl",
                "must be longer than 0 and at most 7 days (S3's limit)",
            ));
        }
        Ok(())
    }
}

/// The two kinds of store, parsed from `storage.url`.
enum Location<'a> {
    Folder(&'a str),
    Bucket { bucket: &'a str, prefix: &'a str },
}

impl<'a> Location<'a> {
    fn parse(url: &'a str) -> Result<Self, SettingsError> {
        if let Some(folder) = url.strip_prefix("file://") {
            if !folder.starts_with('/') {
                return Err(SettingsError::invalid(
                    "storage.url",
                    "file:// must name an absolute folder (file:///var/lib/spruce)",
                ));
            }
            return Ok(Location::Folder(folder));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(SettingsError::invalid(
                    "storage.url",
                    "s3:// names no bucket",
                ));
            }
            return Ok(Location::Bucket {
                bucket,
                prefix: prefix.trim_matches('/'),
            });
        }
        Err(SettingsError::invalid(
            "storage.url",
            "must start with file:// or s3://",
        ))
    }
}

/// Why an object could not be stored, read or removed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("the object key {0:?} is not allowed")]
    BadKey(String),
    #[error("the object store failed: {0}")]
    Store(#[from] object_store::Error),
    #[error("the object store could not be set up: {0}")]
    Setup(String),
}

/// An object's name: `/`-separated segments of letters, digits, `-`, `_` and `.` (no
/// segment empty or made of dots), at most 512 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(String);

impl Key {
    /// Checks `key`.
    ///
    /// # Errors
    /// Names the key when it breaks a rule above.
    pub fn new(key: impl Into<String>) -> Result<Key, StorageError> {
        let key = key.into();
        let segment_ok = |segment: &str| {
            !segment.is_empty()
                && !segment.chars().all(|c| c == '.')
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '='))
        };
        if key.len() > 512 || !key.split('/').all(segment_ok) {
            return Err(StorageError::BadKey(key));
        }
        Ok(Key(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A store of objects; cheap to clone.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// S3's, for pre-signed URLs.
    signer: Option<Arc<AmazonS3>>,
    /// Under the bucket: every key is put under it.
    prefix: String,
    public_url: String,
    url_ttl: Duration,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("store", &self.store.to_string())
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// The store `settings` name (a local folder is created if missing).
    ///
    /// # Errors
    /// When the URL is not one of the two forms, the folder cannot be made, or the S3 client
    /// cannot be built.
    pub fn new(settings: &StorageSettings) -> Result<Storage, StorageError> {
        settings
            .validate()
            .map_err(|error| StorageError::Setup(error.to_string()))?;
        let public_url = settings.public_url.trim_end_matches('/').to_owned();
        match Location::parse(&settings.url)
            .map_err(|error| StorageError::Setup(error.to_string()))?
        {
            Location::Folder(folder) => {
                std::fs::create_dir_all(folder)
                    .map_err(|error| StorageError::Setup(format!("{folder}: {error}")))?;
                Ok(Storage {
                    store: Arc::new(LocalFileSystem::new_with_prefix(folder)?),
                    signer: None,
                    prefix: String::new(),
                    public_url,
                    url_ttl: settings.url_ttl,
                })
            }
            Location::Bucket { bucket, prefix } => {
                // S3 over HTTPS: rustls with ring, as everywhere else in the services.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
                if !settings.region.is_empty() {
                    builder = builder.with_region(&settings.region);
                }
                if !settings.endpoint.is_empty() {
                    builder = builder
                        .with_endpoint(&settings.endpoint)
                        .with_allow_http(settings.endpoint.starts_with("http://"))
                        .with_virtual_hosted_style_request(false);
                }
                if !settings.access_key_id.is_empty() {
                    builder = builder
                        .with_access_key_id(&settings.access_key_id)
                        .with_secret_access_key(&settings.secret_access_key);
                }
                let s3 = Arc::new(builder.build()?);
                Ok(Storage {
                    store: s3.clone(),
                    signer: Some(s3),
                    prefix: prefix.to_owned(),
                    public_url,
                    url_ttl: settings.url_ttl,
                })
            }
        }
    }

    /// Whether objects are kept in a local folder (read through `public_url`), not S3.
    pub fn is_local(&self) -> bool {
        self.signer.is_none()
    }

    fn path(&self, key: &Key) -> Result<Path, StorageError> {
        let full = if self.prefix.is_empty() {
            key.as_str().to_owned()
        } else {
            format!("{}/{}", self.prefix, key.as_str())
        };
        Path::parse(&full).map_err(|_| StorageError::BadKey(key.as_str().to_owned()))
    }

    /// Stores `bytes` as `key`, replacing what was there, at once (a reader sees the old
    /// object or the new one, never a part).
    ///
    /// # Errors
    /// When the store does.
    pub async fn put(&self, key: &Key, bytes: Bytes) -> Result<(), StorageError> {
        self.store
            .put(&self.path(key)?, PutPayload::from_bytes(bytes))
            .await?;
        Ok(())
    }

    /// The object `key`, or `None` when there is none.
    ///
    /// # Errors
    /// When the store does.
    pub async fn get(&self, key: &Key) -> Result<Option<Bytes>, StorageError> {
        match self.store.get(&self.path(key)?).await {
            Ok(object) => Ok(Some(object.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Removes the object `key` (nothing to remove is fine).
    ///
    /// # Errors
    /// When the store does.
    pub async fn delete(&self, key: &Key) -> Result<(), StorageError> {
        match self.store.delete(&self.path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Removes every object whose key starts with the segments of `prefix`; returns how many.
    ///
    /// # Errors
    /// When the store does (some may be removed by then).
    pub async fn delete_under(&self, prefix: &Key) -> Result<usize, StorageError> {
        let prefix = self.path(prefix)?;
        let found: Vec<Path> = self
            .store
            .list(Some(&prefix))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await?;
        for path in &found {
            match self.store.delete(path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(found.len())
    }

    /// The keys under `prefix`, in no particular order.
    ///
    /// # Errors
    /// When the store does.
    pub async fn keys_under(&self, prefix: &Key) -> Result<Vec<String>, StorageError> {
        let prefix = self.path(prefix)?;
        let skip = if self.prefix.is_empty() {
            0
        } else {
            self.prefix.len() + 1
        };
        self.store
            .list(Some(&prefix))
            .map_ok(|meta| meta.location.as_ref()[skip..].to_owned())
            .try_collect()
            .await
            .map_err(Into::into)
    }

    /// A URL that reads the object `key`: pre-signed for `url_ttl` on S3, `public_url`'s
    /// otherwise. It says nothing of whether the object exists (a missing one answers 404).
    ///
    /// # Errors
    /// When the URL cannot be signed.
    pub async fn url(&self, key: &Key) -> Result<String, StorageError> {
        match &self.signer {
            Some(s3) => Ok(s3
                .signed_url(
                    object_store::signer::Method::GET,
                    &self.path(key)?,
                    self.url_ttl,
                )
                .await?
                .to_string()),
            None => Ok(format!("{}/{}", self.public_url, key.as_str())),
        }
    }
}
