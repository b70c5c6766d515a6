//! core's gRPC services over tonic: wire types in, domain types out, errors mapped by
//! `CoreError`'s single conversion. No logic lives here.

mod addresses;
mod bookings;
mod cleaners;
mod readmodel;
mod reviews;
mod users;

pub use addresses::AddressApi;
pub use bookings::BookingApi;
pub use cleaners::CleanerApi;
pub use readmodel::ReadModelApi;
pub use reviews::ReviewApi;
pub use users::UserApi;

use uuid::Uuid;

use crate::error::CoreError;

/// Parses an id from a request path; a malformed id names nothing, so it is "not found".
fn path_id(text: &str) -> Result<Uuid, CoreError> {
    text.parse().map_err(|_| CoreError::NotFound)
}
