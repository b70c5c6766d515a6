//! Core's domain: validated values and the rules about users and sessions. No tonic, no sqlx.

pub mod session;
pub mod user;

/// One broken rule about one input field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field in the REST API's spelling.
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    /// Builds a field error.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        FieldError {
            field,
            message: message.into(),
        }
    }
}
