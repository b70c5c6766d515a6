//! Who may call what: every use case starts here.

use spruce_platform::identity::{Caller, Role};

use crate::error::CoreError;

/// Returns the caller, or refuses an anonymous call.
///
/// # Errors
/// [`CoreError::Unauthenticated`] without a caller.
pub fn authenticated(caller: Option<Caller>) -> Result<Caller, CoreError> {
    caller.ok_or(CoreError::Unauthenticated)
}

/// Returns the caller when they have `role`.
///
/// # Errors
/// [`CoreError::Unauthenticated`] without a caller, [`CoreError::PermissionDenied`] with
/// `why` for another role.
pub fn require_role(
    caller: Option<Caller>,
    role: Role,
    why: &'static str,
) -> Result<Caller, CoreError> {
    let caller = authenticated(caller)?;
    if caller.role == role {
        Ok(caller)
    } else {
        Err(CoreError::PermissionDenied(why))
    }
}
