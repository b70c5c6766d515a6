//! Core's gRPC API as other services call it: core alone, in-process, on a database and an
//! exchange of the test's own.

mod bookings;
mod trust;
