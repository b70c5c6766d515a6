//! Cleaners' photos and identity documents: `/v1/me/cleaner-profile/photo`,
//! `/v1/me/cleaner-profile/documents/{kind}`, `/v1/cleaners/{id}/documents/{kind}`, and
//! `/v1/files/photos/…`, where the gateway serves photos kept in a local folder.

use axum::{
    Json,
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use spruce_domain::{
    objects::{self, DocumentKind},
    reason::Reason,
};
use spruce_platform::identity::Role;
use spruce_proto::core::v1::SetCleanerPhotoRequest;
use tokio::sync::OwnedSemaphorePermit;
use uuid::Uuid;

use super::{AppState, cleaners::ProfileResponse};
use crate::{
    auth::AuthUser,
    error::ApiError,
    uploads::{DOCUMENT_LIMIT_BYTES, PHOTO_LIMIT_BYTES},
};

/// A file's bytes in the document.
pub(super) struct BinaryFile;

impl utoipa::PartialSchema for BinaryFile {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .content_media_type("application/octet-stream")
            .description(Some("The file's bytes."))
            .into()
    }
}

impl utoipa::ToSchema for BinaryFile {
    fn name() -> std::borrow::Cow<'static, str> {
        "BinaryFile".into()
    }
}

/// A kind of identity document in the document: the names `DocumentKind` reads, from the
/// one list.
pub(super) struct DocumentKindName;

impl utoipa::PartialSchema for DocumentKindName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::string_enum(
            "A kind of identity document.",
            DocumentKind::ALL.map(DocumentKind::as_str),
        )
    }
}

impl utoipa::ToSchema for DocumentKindName {
    fn name() -> std::borrow::Cow<'static, str> {
        "DocumentKind".into()
    }
}

/// Refuses anyone but a cleaner.
fn require_cleaner(user: &AuthUser) -> Result<(), ApiError> {
    if user.caller.role == Role::Cleaner {
        Ok(())
    } else {
        Err(ApiError::new(
            Reason::Forbidden,
            "only cleaners upload photos and documents",
        ))
    }
}

/// Takes one of the few upload permits, then reads the body within its limit: the permit
/// is held while the body is read and processed, which is what takes memory.
async fn receive(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<(OwnedSemaphorePermit, bytes::Bytes), ApiError> {
    let permit = state.uploads.permit()?;
    let upload = read_body(headers, body, limit, state.uploads.body_timeout()).await?;
    Ok((permit, upload))
}

/// Reads a request body of at most `limit` bytes within `deadline` (a client that trickles
/// its body would hold one of the few upload permits), refusing a larger one as soon as its
/// declared length or its bytes so far pass the limit.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    deadline: std::time::Duration,
) -> Result<bytes::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            Reason::PayloadTooLarge,
            format!("the file is larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    let read = tokio::time::timeout(deadline, axum::body::to_bytes(body, limit))
        .await
        .map_err(|_| {
            ApiError::malformed(format!(
                "the body did not arrive within {} s",
                deadline.as_secs()
            ))
        })?;
    read.map_err(|error| {
        let over_limit = std::error::Error::source(&error)
            .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if over_limit {
            too_large()
        } else {
            ApiError::malformed(format!("the body could not be read: {error}"))
        }
    })
}

/// Makes the uploaded picture the signed-in cleaner's profile photo: a JPEG, PNG or WebP of
/// at most 5 MiB, recognised by its bytes (not its name or Content-Type), scaled to at most
/// 1024 px a side and stored as a JPEG without any of the upload's metadata (its location
/// included). The profile's `photo_url` then reads it.
#[utoipa::path(
    put,
    path = "/v1/me/cleaner-profile/photo",
    tag = "cleaners",
    request_body(content = BinaryFile, content_type = "application/octet-stream",
        description = "the picture's bytes"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the profile with its new photo", body = ProfileResponse),
        (status = 400, description = "the body could not be read"),
        (status = 403, description = "the role may not do this"),
        (status = 404, description = "the cleaner has no profile yet"),
        (status = 413, description = "the picture is larger than 5 MiB"),
        (status = 415, description = "not a JPEG, PNG or WebP picture"),
        (status = 422, description = "the picture cannot be decoded, or is too large to"),
        (status = 503, description = "too many uploads at once, or storage is down (Retry-After)")
    )
)]
pub(super) async fn put_photo(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ProfileResponse>, ApiError> {
    require_cleaner(&user)?;
    let (_permit, upload) = receive(&state, &headers, body, PHOTO_LIMIT_BYTES).await?;
    let digest = state
        .uploads
        .store_photo(user.caller.user_id, upload)
        .await?;
    let answer = set_photo(&state, &user, digest.clone()).await;
    if let Err(error) = &answer
        && error.reason() == Reason::NotFound
    {
        // Without a profile nothing points at the picture just stored.
        let key = objects::photo_key(user.caller.user_id, &digest);
        state.uploads.discard(&key).await;
    }
    answer
}

/// Removes the signed-in cleaner's profile photo.
#[utoipa::path(
    delete,
    path = "/v1/me/cleaner-profile/photo",
    tag = "cleaners",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the profile without a photo", body = ProfileResponse),
        (status = 403, description = "the role may not do this"),
        (status = 404, description = "the cleaner has no profile yet")
    )
)]
pub(super) async fn delete_photo(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<ProfileResponse>, ApiError> {
    require_cleaner(&user)?;
    set_photo(&state, &user, String::new()).await
}

/// Tells core which photo is the cleaner's, then removes the one it replaced.
async fn set_photo(
    state: &AppState,
    user: &AuthUser,
    photo_digest: String,
) -> Result<Json<ProfileResponse>, ApiError> {
    let response = state
        .upstreams
        .cleaners
        .clone()
        .set_cleaner_photo(user.request(SetCleanerPhotoRequest { photo_digest }))
        .await?
        .into_inner();
    if !response.previous_photo_key.is_empty() {
        state.uploads.discard(&response.previous_photo_key).await;
    }
    let profile = response
        .profile
        .ok_or_else(|| ApiError::internal(&anyhow::anyhow!("core answered without a profile")))?;
    Ok(Json(
        ProfileResponse::with_photo_url(profile, &state.uploads).await?,
    ))
}

/// What was kept of an uploaded document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Document)]
pub(super) struct DocumentBody {
    #[schema(value_type = DocumentKindName)]
    kind: &'static str,
    /// What the bytes are: `application/pdf`, `image/jpeg`, `image/png` or `image/webp`.
    content_type: &'static str,
    size_bytes: usize,
}

/// Parses a document kind from the path.
fn document_kind(kind: &str) -> Result<DocumentKind, ApiError> {
    DocumentKind::parse(kind).ok_or_else(|| {
        ApiError::invalid_field(
            "kind",
            "must be id_card, passport, driving_licence, proof_of_address or right_to_work",
        )
    })
}

/// Hands in one of the signed-in cleaner's identity documents for vetting: a PDF, JPEG, PNG
/// or WebP of at most 10 MiB, recognised by its bytes. A new one of a kind replaces the old.
/// Only the cleaner and admins can read it.
#[utoipa::path(
    put,
    path = "/v1/me/cleaner-profile/documents/{kind}",
    tag = "cleaners",
    params(("kind" = DocumentKindName, Path, description = "the kind of document")),
    request_body(content = BinaryFile, content_type = "application/octet-stream",
        description = "the document's bytes"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the document as kept", body = DocumentBody),
        (status = 400, description = "the body could not be read"),
        (status = 403, description = "the role may not do this"),
        (status = 413, description = "the document is larger than 10 MiB"),
        (status = 415, description = "not a PDF, JPEG, PNG or WebP file"),
        (status = 503, description = "too many uploads at once, or storage is down (Retry-After)")
    )
)]
pub(super) async fn put_document(
    State(state): State<AppState>,
    user: AuthUser,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<DocumentBody>, ApiError> {
    require_cleaner(&user)?;
    let kind = document_kind(&kind)?;
    let (_permit, upload) = receive(&state, &headers, body, DOCUMENT_LIMIT_BYTES).await?;
    let size_bytes = upload.len();
    let media_type = state
        .uploads
        .store_document(user.caller.user_id, kind, upload)
        .await?;
    Ok(Json(DocumentBody {
        kind: kind.as_str(),
        content_type: media_type.mime(),
        size_bytes,
    }))
}

/// Returns a cleaner's identity document, to the cleaner and to admins; to anyone else it
/// does not exist.
#[utoipa::path(
    get,
    path = "/v1/cleaners/{id}/documents/{kind}",
    tag = "cleaners",
    params(
        ("id" = Uuid, Path, description = "the cleaner's user id"),
        ("kind" = DocumentKindName, Path, description = "the kind of document")
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the document's bytes, typed by what they are",
            body = BinaryFile, content_type = "application/octet-stream"),
        (status = 404, description = "no such document (or not yours)")
    )
)]
pub(super) async fn get_document(
    State(state): State<AppState>,
    user: AuthUser,
    Path((cleaner_id, kind)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let cleaner_id: Uuid = cleaner_id.parse().map_err(|_| ApiError::not_found())?;
    let kind = document_kind(&kind)?;
    if user.caller.user_id != cleaner_id && user.caller.role != Role::Admin {
        return Err(ApiError::not_found());
    }
    let (content_type, bytes) = state
        .uploads
        .document(cleaner_id, kind)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment"),
        ),
    ];
    Ok((headers, bytes).into_response())
}

/// Serves a profile photo kept in the gateway's local folder (`storage.url = "file://…"`).
/// Photos are named by their content, so a URL always shows the same picture. With S3 the
/// profile's `photo_url` is a pre-signed URL of the bucket instead, and this answers 404.
#[utoipa::path(
    get,
    path = "/v1/files/photos/{owner}/{name}",
    tag = "cleaners",
    params(
        ("owner" = Uuid, Path, description = "the cleaner's user id"),
        ("name" = String, Path, description = "the photo's name, as in photo_url")
    ),
    responses(
        (status = 200, description = "the photo (JPEG)", body = BinaryFile, content_type = "image/jpeg"),
        (status = 404, description = "no such photo")
    )
)]
pub(super) async fn get_file(
    State(state): State<AppState>,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let photo = state
        .uploads
        .public_photo(&owner, &name)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    Ok((StatusCode::OK, headers, photo).into_response())
}
