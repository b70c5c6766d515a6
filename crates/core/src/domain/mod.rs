//! Core's domain: validated values and the rules about users, sessions, cleaners and
//! addresses. No tonic, no sqlx.

/// Declares an enum with a fixed wire spelling per variant, its `ALL` list, `as_str`,
/// `FromStr` (whose error lists the accepted spellings) and `Display`.
macro_rules! wire_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Returns the wire spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                $name::ALL.iter().copied().find(|variant| variant.as_str() == value).ok_or_else(|| {
                    let accepted: Vec<&str> = $name::ALL.iter().map(|variant| variant.as_str()).collect();
                    format!("{value:?} is not one of {}", accepted.join(", "))
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str(self.as_str())
            }
        }
    };
}

use spruce_domain::text::{
    FORBIDDEN_CHARACTER_MESSAGE, is_forbidden_character, is_forbidden_in_line,
};

pub mod address;
pub mod booking;
pub mod cleaner;
pub mod geo;
pub mod review;
pub mod secret;
pub mod session;
pub mod user;

pub use spruce_domain::reason::FieldError;

/// Collects every broken rule of one input, so a client learns all its mistakes at once.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    /// Records `message` against `field`.
    pub fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// Records the message when `rule` does not hold.
    pub fn check(&mut self, rule: bool, field: &'static str, message: impl FnOnce() -> String) {
        if !rule {
            self.fail(field, message());
        }
    }

    /// Records errors found elsewhere.
    pub fn extend(&mut self, errors: Vec<FieldError>) {
        self.errors.extend(errors);
    }

    /// Returns `raw` trimmed, recording an error when it is blank, longer than `max` or
    /// holds a control or format character (one line of text: a name, a street).
    pub fn text(&mut self, field: &'static str, raw: &str, max: usize) -> String {
        let text = raw.trim();
        if text.is_empty() {
            self.fail(field, "is required");
        } else if text.chars().any(is_forbidden_in_line) {
            self.fail(field, FORBIDDEN_CHARACTER_MESSAGE);
        } else if text.chars().count() > max {
            self.fail(field, format!("must be at most {max} characters"));
        }
        text.to_owned()
    }

    /// Returns `raw` trimmed, possibly empty, recording an error when it is longer than `max`
    /// or holds a control character other than a line break or a tab, or a format character (a
    /// bio, a comment).
    pub fn free_text(&mut self, field: &'static str, raw: &str, max: usize) -> String {
        let text = raw.trim();
        if text.chars().any(is_forbidden_character) {
            self.fail(field, FORBIDDEN_CHARACTER_MESSAGE);
        } else if text.chars().count() > max {
            self.fail(field, format!("must be at most {max} characters"));
        }
        text.to_owned()
    }

    /// Returns `value` when no rule was broken, otherwise every error.
    ///
    /// # Errors
    /// The collected field errors.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, Vec<FieldError>> {
        match value {
            Some(value) if self.errors.is_empty() => Ok(value),
            _ if self.errors.is_empty() => Err(vec![FieldError::new("body", "is invalid")]),
            _ => Err(self.errors),
        }
    }
}
