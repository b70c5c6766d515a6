//! The `addresses` table.

use chrono::{DateTime, Utc};
use spruce_platform::paging::Cursor;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    domain::{
        address::{Address, AddressInput},
        geo::GeoPoint,
    },
    error::CoreError,
};

spruce_db::named_row! {
    /// An address as stored.
    pub(super) struct StoredAddress {
        id: Uuid,
        customer_id: Uuid,
        label: String,
        line1: String,
        city: String,
        postal_code: String,
        lat: f64,
        lng: f64,
        size_m2: i32,
        bedrooms: i32,
        bathrooms: i32,
        has_pets: bool,
        created_at: DateTime<Utc>,
    }
}

/// The columns of a [`StoredAddress`], as a literal for `concat!`.
macro_rules! address_columns {
    () => {
        "id, customer_id, label, line1, city, postal_code, lat, lng, size_m2, bedrooms, bathrooms, \
         has_pets, created_at"
    };
}
pub(super) use address_columns;

pub(super) fn into_address(row: StoredAddress) -> Address {
    let count = |value: i32| u32::try_from(value).unwrap_or(0);
    Address {
        id: row.id,
        customer_id: row.customer_id,
        details: AddressInput {
            label: row.label,
            line1: row.line1,
            city: row.city,
            postal_code: row.postal_code,
            location: GeoPoint {
                lat: row.lat,
                lng: row.lng,
            },
            size_m2: count(row.size_m2),
            bedrooms: count(row.bedrooms),
            bathrooms: count(row.bathrooms),
            has_pets: row.has_pets,
        },
        created_at: row.created_at,
    }
}

/// Stores a new address for `customer_id`.
pub async fn insert_address(
    connection: &mut PgConnection,
    customer_id: Uuid,
    address: &AddressInput,
) -> Result<Address, CoreError> {
    let count = |value: u32| i32::try_from(value).unwrap_or(i32::MAX);
    let row: StoredAddress = sqlx::query_as(concat!(
        "INSERT INTO addresses (id, customer_id, label, line1, city, postal_code, lat, lng, size_m2, \
         bedrooms, bathrooms, has_pets) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         RETURNING ", address_columns!()
    ))
    .bind(Uuid::new_v4())
    .bind(customer_id)
    .bind(&address.label)
    .bind(&address.line1)
    .bind(&address.city)
    .bind(&address.postal_code)
    .bind(address.location.lat)
    .bind(address.location.lng)
    .bind(count(address.size_m2))
    .bind(count(address.bedrooms))
    .bind(count(address.bathrooms))
    .bind(address.has_pets)
    .fetch_one(connection)
    .await?;
    Ok(into_address(row))
}

/// Locks the customer's user row until the transaction ends and returns how many addresses
/// they have.
pub async fn lock_and_count(
    connection: &mut PgConnection,
    customer_id: Uuid,
) -> Result<i64, CoreError> {
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
        .bind(customer_id)
        .execute(&mut *connection)
        .await?;
    let count = sqlx::query_scalar("SELECT count(*) FROM addresses WHERE customer_id = $1")
        .bind(customer_id)
        .fetch_one(connection)
        .await?;
    Ok(count)
}

/// Returns up to `limit` of a customer's addresses, oldest first, after `after`.
pub async fn list_addresses(
    connection: &mut PgConnection,
    customer_id: Uuid,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Vec<Address>, CoreError> {
    let (after_time, after_id) = Cursor::bind_parts(after);
    let rows: Vec<StoredAddress> = sqlx::query_as(concat!(
        "SELECT ",
        address_columns!(),
        " FROM addresses WHERE customer_id = $1 \
         AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) \
         ORDER BY created_at, id LIMIT $4"
    ))
    .bind(customer_id)
    .bind(after_time)
    .bind(after_id)
    .bind(limit)
    .fetch_all(connection)
    .await?;
    Ok(rows.into_iter().map(into_address).collect())
}

/// Returns the addresses `ids`, whoever owns them (the caller checks the owner).
pub async fn find_addresses(
    connection: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<Address>, CoreError> {
    let rows: Vec<StoredAddress> = sqlx::query_as(concat!(
        "SELECT ",
        address_columns!(),
        " FROM addresses WHERE id = ANY($1)"
    ))
    .bind(ids)
    .fetch_all(connection)
    .await?;
    Ok(rows.into_iter().map(into_address).collect())
}

/// Returns one of a customer's addresses.
pub async fn find_address(
    connection: &mut PgConnection,
    id: Uuid,
    customer_id: Uuid,
) -> Result<Option<Address>, CoreError> {
    let row: Option<StoredAddress> = sqlx::query_as(concat!(
        "SELECT ",
        address_columns!(),
        " FROM addresses WHERE id = $1 AND customer_id = $2"
    ))
    .bind(id)
    .bind(customer_id)
    .fetch_optional(connection)
    .await?;
    Ok(row.map(into_address))
}
