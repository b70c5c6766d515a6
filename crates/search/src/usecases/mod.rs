//! What each of search's requests and events does, in domain types: the gRPC adapters and
//! the event consumer call these.

pub mod live;
pub mod models;
pub mod search;
