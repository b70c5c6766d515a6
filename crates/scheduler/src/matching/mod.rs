//! The matching engine, free of I/O: who should clean what. Today its two modes: the exact
//! cheapest assignment ([`solver`]) and a stable matching where cleaners' preferences count
//! ([`stable`]); the cost model and the hard constraints around them come next (issue 13).

pub mod solver;
pub mod stable;
