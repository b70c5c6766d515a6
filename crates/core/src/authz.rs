//! Who may call what: every use case starts here.

use spruce_platform::identity::{Caller, Principal, Role};

use crate::error::CoreError;

/// Returns the caller, or refuses an anonymous call.
///
/// # Errors
/// [`CoreError::Unauthenticated`] without a caller.
pub fn authenticated(caller: Option<Caller>) -> Result<Caller, CoreError> {
    caller.ok_or(CoreError::Unauthenticated)
}

/// Lets an admin or the service `service` through. A service reaches only the RPCs listed
/// for it in core's `SERVICE_RPCS`; this names which service a use case is for.
///
/// # Errors
/// [`CoreError::Unauthenticated`] without a caller, [`CoreError::PermissionDenied`] with
/// `why` for anyone else.
pub fn require_admin_or_service(
    principal: Option<&Principal>,
    service: &str,
    why: &'static str,
) -> Result<(), CoreError> {
    match principal {
        None => Err(CoreError::Unauthenticated),
        Some(Principal::User(caller)) if caller.role == Role::Admin => Ok(()),
        Some(Principal::Service(name)) if &**name == service => Ok(()),
        Some(_) => Err(CoreError::PermissionDenied(why)),
    }
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
