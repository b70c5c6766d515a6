//! The use cases behind core's RPCs: each checks who may do it, validates through the
//! domain, and runs its reads and writes (and its events, through the outbox) in one
//! transaction.

pub mod accounts;
pub mod addresses;
pub mod bookings;
pub mod cleaners;
pub mod readmodel;
pub mod reviews;
