//! The matching engine, free of I/O: who should clean what. A round ([`engine::plan`])
//! turns open bookings and their candidates into costs and solves them in one of two
//! modes: the exact cheapest assignment ([`solver`]) or a stable matching where cleaners'
//! preferences count ([`stable`]). The `auto-assign` job (`usecases::jobs::assign`) feeds it.

pub mod engine;
pub mod solver;
pub mod stable;
