//! The scheduler's rules, in plain Rust: what the analytics archive holds, what a clock job
//! and its runs are and when they tick, the matching engine, and what notifications say to whom on which channel.

pub mod archive;
pub mod jobs;
pub mod matching;
pub mod notifications;
pub mod schedule;
