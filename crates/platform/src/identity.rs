//! The caller's identity as it travels between services: the gateway verifies the access
//! token and forwards `x-user-id` and `x-user-role`; gRPC servers read them back here.

use std::{fmt, str::FromStr};

use uuid::Uuid;

/// Metadata key carrying the authenticated user's id.
pub const USER_ID_KEY: &str = "x-user-id";
/// Metadata key carrying the authenticated user's role.
pub const USER_ROLE_KEY: &str = "x-user-role";

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
}

impl Caller {
    /// Returns whether this caller may act on resources owned by `owner`.
    pub fn may_access(&self, owner: Uuid) -> bool {
        self.user_id == owner || self.role == Role::Admin
    }

    /// Writes the identity into outgoing gRPC metadata.
    pub fn write_to(&self, metadata: &mut tonic::metadata::MetadataMap) {
        let user_id = self.user_id.to_string();
        if let Ok(value) = user_id.parse() {
            metadata.insert(USER_ID_KEY, value);
        }
        metadata.insert(
            USER_ROLE_KEY,
            tonic::metadata::MetadataValue::from_static(self.role.as_str()),
        );
    }

    /// Reads the identity from incoming gRPC metadata; `None` when absent or malformed.
    pub fn read_from(metadata: &tonic::metadata::MetadataMap) -> Option<Self> {
        let user_id = metadata.get(USER_ID_KEY)?.to_str().ok()?.parse().ok()?;
        let role = metadata.get(USER_ROLE_KEY)?.to_str().ok()?.parse().ok()?;
        Some(Caller { user_id, role })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_survives_a_metadata_round_trip() {
        let caller = Caller {
            user_id: Uuid::new_v4(),
            role: Role::Cleaner,
        };
        let mut metadata = tonic::metadata::MetadataMap::new();
        caller.write_to(&mut metadata);
        assert_eq!(Caller::read_from(&metadata), Some(caller));
    }

    #[test]
    fn malformed_identity_is_rejected() {
        let mut metadata = tonic::metadata::MetadataMap::new();
        metadata.insert(USER_ID_KEY, "not-a-uuid".parse().unwrap());
        metadata.insert(USER_ROLE_KEY, "customer".parse().unwrap());
        assert_eq!(Caller::read_from(&metadata), None);
    }

    #[test]
    fn only_the_owner_or_an_admin_may_access() {
        let owner = Uuid::new_v4();
        let stranger = Caller {
            user_id: Uuid::new_v4(),
            role: Role::Customer,
        };
        let admin = Caller {
            user_id: Uuid::new_v4(),
            role: Role::Admin,
        };
        assert!(!stranger.may_access(owner));
        assert!(admin.may_access(owner));
        assert!(
            Caller {
                user_id: owner,
                role: Role::Customer
            }
            .may_access(owner)
        );
    }
}
