//! The rules every Spruce service shares, in plain Rust: prices and the rule-of-thumb
//! duration, weekly working hours, where users' files are kept, time zones, the vocabulary of failure reasons and field
//! errors, and the text and email rules of user input (and digests written as hex). No I/O,
//! no wire types.

pub mod email;
pub mod hours;
pub mod objects;
pub mod pricing;
pub mod reason;
pub mod text;
pub mod zone;
