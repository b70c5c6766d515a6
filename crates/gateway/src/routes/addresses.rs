//! `/v1/me/addresses`.

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use spruce_proto::core::v1::{Address, AddressInput, CreateAddressRequest, ListAddressesRequest};

use super::{AppState, PageQuery, page, page_limit, rfc3339};
use crate::{
    auth::AuthUser,
    error::ApiError,
    extract::{ApiJson, ApiQuery},
    fields::Checks,
};

/// `POST /v1/me/addresses` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = AddressRequest)]
#[serde(deny_unknown_fields)]
pub(super) struct AddressBody {
    #[serde(default)]
    #[schema(required = true, min_length = 1, max_length = 50, format = "line")]
    label: String,
    #[serde(default)]
    #[schema(required = true, min_length = 1, max_length = 200, format = "line")]
    line1: String,
    #[serde(default)]
    #[schema(required = true, min_length = 1, max_length = 100, format = "line")]
    city: String,
    #[serde(default)]
    #[schema(required = true, min_length = 1, max_length = 20, format = "line")]
    postal_code: String,
    #[serde(default)]
    #[schema(required = true, value_type = f64, minimum = -90.0, maximum = 90.0)]
    lat: Option<f64>,
    #[serde(default)]
    #[schema(required = true, value_type = f64, minimum = -180.0, maximum = 180.0)]
    lng: Option<f64>,
    #[serde(default)]
    #[schema(required = true, value_type = u32, minimum = 10, maximum = 2000)]
    size_m2: Option<u32>,
    #[serde(default)]
    #[schema(required = true, value_type = u32, minimum = 0, maximum = 20)]
    bedrooms: Option<u32>,
    #[serde(default)]
    #[schema(required = true, value_type = u32, minimum = 1, maximum = 20)]
    bathrooms: Option<u32>,
    /// False when left out.
    #[serde(default)]
    has_pets: bool,
}

/// An address as the mobile apps see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Address)]
pub(super) struct AddressResponse {
    #[schema(format = Uuid)]
    id: String,
    label: String,
    line1: String,
    city: String,
    postal_code: String,
    lat: f64,
    lng: f64,
    size_m2: u32,
    bedrooms: u32,
    bathrooms: u32,
    has_pets: bool,
    #[schema(format = DateTime)]
    created_at: Option<String>,
}

page! {
    /// The customer's addresses, oldest first.
    AddressPage of AddressResponse
}

impl From<Address> for AddressResponse {
    fn from(address: Address) -> Self {
        let details = address.details.unwrap_or_default();
        AddressResponse {
            created_at: address.created_at.as_ref().and_then(rfc3339),
            id: address.id,
            label: details.label,
            line1: details.line1,
            city: details.city,
            postal_code: details.postal_code,
            lat: details.lat,
            lng: details.lng,
            size_m2: details.size_m2,
            bedrooms: details.bedrooms,
            bathrooms: details.bathrooms,
            has_pets: details.has_pets,
        }
    }
}

/// Adds an address for the signed-in customer.
#[utoipa::path(
    post,
    path = "/v1/me/addresses",
    tag = "me",
    request_body = AddressBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "the new address", body = AddressResponse),
        (status = 403, description = "the role may not do this"),
        (status = 409, description = "the customer keeps 20 addresses already")
    )
)]
pub(super) async fn create_address(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<AddressBody>,
) -> Result<(StatusCode, Json<AddressResponse>), ApiError> {
    let mut checks = Checks::default();
    for (field, absent) in [
        ("lat", body.lat.is_none()),
        ("lng", body.lng.is_none()),
        ("size_m2", body.size_m2.is_none()),
        ("bedrooms", body.bedrooms.is_none()),
        ("bathrooms", body.bathrooms.is_none()),
    ] {
        if absent {
            checks.refuse(field, "is required");
        }
    }
    checks.finish()?;
    let message = CreateAddressRequest {
        address: Some(AddressInput {
            label: body.label,
            line1: body.line1,
            city: body.city,
            postal_code: body.postal_code,
            lat: body.lat.unwrap_or_default(),
            lng: body.lng.unwrap_or_default(),
            size_m2: body.size_m2.unwrap_or_default(),
            bedrooms: body.bedrooms.unwrap_or_default(),
            bathrooms: body.bathrooms.unwrap_or_default(),
            has_pets: body.has_pets,
        }),
    };
    let address = state
        .upstreams
        .addresses
        .clone()
        .create_address(user.request(message))
        .await?;
    Ok((StatusCode::CREATED, Json(address.into_inner().into())))
}

/// Lists the signed-in customer's addresses, oldest first.
#[utoipa::path(
    get,
    path = "/v1/me/addresses",
    tag = "me",
    params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the customer's addresses, oldest first", body = AddressPage),
        (status = 403, description = "the role may not do this")
    )
)]
pub(super) async fn list_addresses(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<AddressPage>, ApiError> {
    let message = ListAddressesRequest {
        limit: page_limit(page.limit)?,
        cursor: page.cursor.unwrap_or_default(),
    };
    let response = state
        .upstreams
        .addresses
        .clone()
        .list_addresses(user.request(message))
        .await?
        .into_inner();
    Ok(Json(AddressPage::new(
        response.addresses.into_iter().map(Into::into).collect(),
        response.next_cursor,
    )))
}
