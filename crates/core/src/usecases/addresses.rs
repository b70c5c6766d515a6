//! Customers' addresses: the use cases behind `AddressService`.

use spruce_platform::{
    identity::{Caller, Role},
    paging::{Cursor, split_page},
};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    authz::require_role,
    domain::address::{Address, AddressInput, MAX_ADDRESSES},
    error::CoreError,
    store::addresses,
};

const CUSTOMERS_ONLY: &str = "only customers have addresses";

/// The address use cases.
#[derive(Clone)]
pub struct Addresses {
    pool: PgPool,
}

impl Addresses {
    /// Creates the use cases over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Addresses { pool }
    }

    /// Adds an address for the calling customer.
    pub async fn create(
        &self,
        caller: Option<Caller>,
        input: AddressInput,
    ) -> Result<Address, CoreError> {
        let caller = require_role(caller, Role::Customer, CUSTOMERS_ONLY)?;
        let mut transaction = self.pool.begin().await?;
        // Counted under the customer's lock, so concurrent requests cannot pass the limit.
        let held = addresses::lock_and_count(&mut transaction, caller.user_id).await?;
        if held >= MAX_ADDRESSES {
            return Err(CoreError::LimitReached(format!(
                "a customer keeps at most {MAX_ADDRESSES} addresses"
            )));
        }
        let address = addresses::insert_address(&mut transaction, caller.user_id, &input).await?;
        transaction.commit().await?;
        Ok(address)
    }

    /// Returns one of the calling customer's addresses; someone else's is not found.
    pub async fn get(&self, caller: Option<Caller>, id: Uuid) -> Result<Address, CoreError> {
        let caller = require_role(caller, Role::Customer, CUSTOMERS_ONLY)?;
        let mut connection = self.pool.acquire().await?;
        addresses::find_address(&mut connection, id, caller.user_id)
            .await?
            .ok_or(CoreError::NotFound)
    }

    /// Returns a page of the calling customer's addresses and the next page's cursor.
    pub async fn list(
        &self,
        caller: Option<Caller>,
        after: Option<Cursor>,
        limit: i64,
    ) -> Result<(Vec<Address>, Option<Cursor>), CoreError> {
        let caller = require_role(caller, Role::Customer, CUSTOMERS_ONLY)?;
        let mut connection = self.pool.acquire().await?;
        let rows =
            addresses::list_addresses(&mut connection, caller.user_id, after, limit + 1).await?;
        Ok(split_page(rows, limit, |address| Cursor {
            created_at: address.created_at,
            id: address.id,
        }))
    }
}
