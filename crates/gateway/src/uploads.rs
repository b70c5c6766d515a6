//! Files users upload: each read within its size limit while one of a few permits is held
//! (so a burst of the largest uploads keeps at most `uploads.concurrency` bodies and
//! decodes in memory), recognised by its bytes, made fit to keep, and written to object
//! storage under the keys of `spruce_domain::objects`.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use spruce_domain::{
    objects::{self, DocumentKind, PHOTO_DIGEST_LENGTH},
    text::lower_hex,
};
use spruce_storage::{
    Key, Storage, StorageError,
    media::{self, MediaError, MediaType},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

/// The largest profile photo taken, as uploaded.
pub const PHOTO_LIMIT_BYTES: usize = 5 * 1024 * 1024;
/// The largest identity document taken.
pub const DOCUMENT_LIMIT_BYTES: usize = 10 * 1024 * 1024;

/// Why an upload was not kept.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("too many uploads at once, try again shortly")]
    Busy,
    #[error("{0}")]
    Unsupported(&'static str),
    #[error("{0}")]
    Unreadable(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Uploads and the store they go to; cheap to clone.
#[derive(Clone, Debug)]
pub struct Uploads {
    storage: Storage,
    permits: Arc<Semaphore>,
    body_timeout: Duration,
}

impl Uploads {
    /// Keeps uploads in `storage`, at most `concurrency` at once, each body given
    /// `body_timeout` to arrive.
    pub fn new(storage: Storage, concurrency: usize, body_timeout: Duration) -> Self {
        Uploads {
            storage,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            body_timeout,
        }
    }

    /// How long an upload's body may take to arrive.
    pub fn body_timeout(&self) -> Duration {
        self.body_timeout
    }

    /// A permit to read and process one upload, if one is free now.
    ///
    /// # Errors
    /// [`UploadError::Busy`] when every permit is taken.
    pub fn permit(&self) -> Result<OwnedSemaphorePermit, UploadError> {
        self.permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| UploadError::Busy)
    }

    /// Makes `upload` (a JPEG, PNG or WebP) `owner`'s photo in the store, scaled and without
    /// metadata; returns its digest, which names it.
    ///
    /// # Errors
    /// Unsupported or unreadable pictures, and the store's failures.
    pub async fn store_photo(&self, owner: Uuid, upload: Bytes) -> Result<String, UploadError> {
        // Decoding and encoding take tens of milliseconds of CPU: off the async workers.
        let photo = tokio::task::spawn_blocking(move || media::profile_photo(&upload))
            .await
            .map_err(|error| UploadError::Unreadable(error.to_string()))?
            .map_err(|error| match error {
                MediaError::Unsupported => {
                    UploadError::Unsupported("a photo must be a JPEG, PNG or WebP picture")
                }
                MediaError::Broken(why) => UploadError::Unreadable(why),
            })?;
        let digest = lower_hex(&Sha256::digest(&photo.jpeg)[..PHOTO_DIGEST_LENGTH / 2]);
        let key = Key::new(objects::photo_key(owner, &digest))?;
        self.storage.put(&key, Bytes::from(photo.jpeg)).await?;
        Ok(digest)
    }

    /// Removes the object `key` names (an old photo); a failure is logged, not returned, as
    /// what it leaves behind is only a file nobody points at.
    pub async fn discard(&self, key: &str) {
        let removed = match Key::new(key) {
            Ok(key) => self.storage.delete(&key).await,
            Err(error) => Err(error),
        };
        if let Err(error) = removed {
            tracing::warn!(key, %error, "an unused upload was not removed");
        }
    }

    /// Keeps `upload` (a PDF or a picture) as `owner`'s document of `kind`, replacing the one
    /// before; returns what it is.
    ///
    /// # Errors
    /// Anything but a PDF or a picture, and the store's failures.
    pub async fn store_document(
        &self,
        owner: Uuid,
        kind: DocumentKind,
        upload: Bytes,
    ) -> Result<MediaType, UploadError> {
        let media_type = MediaType::sniff(&upload).ok_or(UploadError::Unsupported(
            "a document must be a PDF, JPEG, PNG or WebP file",
        ))?;
        let key = Key::new(objects::document_key(owner, kind))?;
        self.storage.put(&key, upload).await?;
        Ok(media_type)
    }

    /// `owner`'s document of `kind` and its content type, if they handed one in.
    ///
    /// # Errors
    /// The store's failures.
    pub async fn document(
        &self,
        owner: Uuid,
        kind: DocumentKind,
    ) -> Result<Option<(&'static str, Bytes)>, UploadError> {
        let key = Key::new(objects::document_key(owner, kind))?;
        let Some(bytes) = self.storage.get(&key).await? else {
            return Ok(None);
        };
        // Only sniffed files are stored; one put there otherwise is served as plain bytes.
        let content_type =
            MediaType::sniff(&bytes).map_or("application/octet-stream", MediaType::mime);
        Ok(Some((content_type, bytes)))
    }

    /// A URL that reads the photo `key` (pre-signed on S3; the gateway's own otherwise).
    ///
    /// # Errors
    /// When the store cannot sign one.
    pub async fn photo_url(&self, key: &str) -> Result<String, UploadError> {
        Ok(self.storage.url(&Key::new(key)?).await?)
    }

    /// `owner`'s photo named `name` (`<digest>.jpg`) when the store is a local folder the
    /// gateway serves: only photos (documents are private), and only from a local store
    /// (S3 serves its own).
    ///
    /// # Errors
    /// The store's failures.
    pub async fn public_photo(
        &self,
        owner: &str,
        name: &str,
    ) -> Result<Option<Bytes>, UploadError> {
        let digest = name
            .strip_suffix(".jpg")
            .filter(|digest| objects::is_photo_digest(digest));
        let Some(digest) = digest.filter(|_| self.storage.is_local()) else {
            return Ok(None);
        };
        let Ok(key) = Key::new(objects::photo_key(owner, digest)) else {
            return Ok(None);
        };
        Ok(self.storage.get(&key).await?)
    }
}
