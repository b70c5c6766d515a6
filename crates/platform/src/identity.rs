//! Who is calling: a user (from their verified access token) or a service acting on its own
//! behalf (from its verified service token). gRPC servers find it in the request's
//! extensions, put there by the authentication layer (`crate::grpc`); nothing a caller
//! writes in metadata is believed.

use std::{fmt, str::FromStr, sync::Arc};

use uuid::Uuid;

/// What a user may do in the marketplace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Customer,
    Cleaner,
    Admin,
}

impl Role {
    /// Returns the role's wire spelling ("customer", "cleaner", "admin").
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Cleaner => "cleaner",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// The error for a role name that is not one of ours.
#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?}")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "customer" => Ok(Role::Customer),
            "cleaner" => Ok(Role::Cleaner),
            "admin" => Ok(Role::Admin),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

impl From<Role> for spruce_proto::core::v1::Role {
    fn from(role: Role) -> Self {
        match role {
            Role::Customer => spruce_proto::core::v1::Role::Customer,
            Role::Cleaner => spruce_proto::core::v1::Role::Cleaner,
            Role::Admin => spruce_proto::core::v1::Role::Admin,
        }
    }
}

impl Role {
    /// Reads a wire role (`spruce.core.v1.Role` as `i32`); `None` when unspecified or unknown.
    pub fn from_proto(value: i32) -> Option<Self> {
        use spruce_proto::core::v1::Role as Wire;
        match Wire::try_from(value).ok()? {
            Wire::Customer => Some(Role::Customer),
            Wire::Cleaner => Some(Role::Cleaner),
            Wire::Admin => Some(Role::Admin),
            Wire::Unspecified => None,
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub user_id: Uuid,
    pub role: Role,
    /// The session the access token was issued for, when it names one.
    pub session_id: Option<Uuid>,
}

impl Caller {
    /// Returns whether this caller may act on resources owned by `owner`.
    pub fn may_access(&self, owner: Uuid) -> bool {
        self.user_id == owner || self.role == Role::Admin
    }

    /// Returns the user the authentication layer verified for this call, if a user called.
    pub fn of<T>(request: &tonic::Request<T>) -> Option<Self> {
        match Principal::of(request)? {
            Principal::User(caller) => Some(*caller),
            Principal::Service(_) => None,
        }
    }
}

/// A verified caller of a gRPC service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A signed-in user, through their access token.
    User(Caller),
    /// A service acting on its own behalf, by name (`gateway`, `scheduler`, `search`).
    Service(Arc<str>),
}

impl Principal {
    /// Returns the principal the authentication layer verified for this call.
    pub fn of<T>(request: &tonic::Request<T>) -> Option<&Self> {
        request.extensions().get::<Principal>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owner_or_an_admin_may_access() {
        let owner = Uuid::new_v4();
        let stranger = Caller {
            user_id: Uuid::new_v4(),
            role: Role::Customer,
            session_id: None,
        };
        let admin = Caller {
            user_id: Uuid::new_v4(),
            role: Role::Admin,
            session_id: None,
        };
        assert!(!stranger.may_access(owner));
        assert!(admin.may_access(owner));
        assert!(
            Caller {
                user_id: owner,
                role: Role::Customer,
                session_id: None,
            }
            .may_access(owner)
        );
    }
}
