//! Generated protobuf and gRPC code for every Spruce contract, plus the file descriptor
//! set that servers hand to gRPC reflection.

#![allow(unreachable_pub, clippy::all)]

/// Shared error details attached to gRPC statuses.
pub mod common {
    pub mod v1 {
        tonic::include_proto!("spruce.common.v1");
    }
}

/// Users, credentials and sessions (served by spruce-core).
pub mod core {
    pub mod v1 {
        tonic::include_proto!("spruce.core.v1");
    }
}

/// Geo search and recommendations (served by spruce-search).
pub mod search {
    pub mod v1 {
        tonic::include_proto!("spruce.search.v1");
    }
}

/// Notifications and jobs (served by spruce-scheduler).
pub mod scheduler {
    pub mod v1 {
        tonic::include_proto!("spruce.scheduler.v1");
    }
}

/// Event payloads carried over RabbitMQ.
pub mod events {
    pub mod v1 {
        tonic::include_proto!("spruce.events.v1");
    }
}

/// The lowercase names the older string fields carry (`in_progress`, `move_out`), for the
/// enums beside them: `BOOKING_STATUS_IN_PROGRESS` is `in_progress`.
macro_rules! wire_names {
    ($($enum:path => $prefix:literal),* $(,)?) => {$(
        impl $enum {
            /// The string field's spelling; empty for the unspecified value. The spellings
            /// are made once, so reading a message allocates nothing for it.
            pub fn wire_name(self) -> &'static str {
                static NAMES: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
                    (0..)
                        .map_while(|value| <$enum>::try_from(value).ok())
                        .map(|kind| {
                            kind.as_str_name()
                                .strip_prefix($prefix)
                                .filter(|_| kind != <$enum>::default())
                                .map(str::to_ascii_lowercase)
                                .unwrap_or_default()
                        })
                        .collect()
                });
                usize::try_from(self as i32)
                    .ok()
                    .and_then(|index| NAMES.get(index))
                    .map_or("", String::as_str)
            }

            /// The value the string field's spelling names; unspecified for any other.
            /// Compares without allocating: it runs for every message core sends.
            pub fn from_wire_name(name: &str) -> Self {
                if name.is_empty() || name.bytes().any(|byte| byte.is_ascii_uppercase()) {
                    return <$enum>::default();
                }
                (1..)
                    .map_while(|value| Self::try_from(value).ok())
                    .find(|kind| {
                        kind.as_str_name()
                            .strip_prefix($prefix)
                            .is_some_and(|spelled| spelled.eq_ignore_ascii_case(name))
                    })
                    .unwrap_or_default()
            }
        }
    )*};
}

/// The enum's name when the sender set the enum, else the string beside it (a sender of an
/// earlier release fills only the string).
pub fn enum_or_string<'a>(from_enum: &'a str, from_string: &'a str) -> &'a str {
    if from_enum.is_empty() {
        from_string
    } else {
        from_enum
    }
}

/// The services' names from the enums when the sender set any, else the strings beside them.
/// An unknown value reads as an empty name, which the reader refuses as it would any.
pub fn services_or_strings(kinds: &[i32], strings: &[String]) -> Vec<String> {
    if kinds.is_empty() {
        return strings.to_vec();
    }
    kinds
        .iter()
        .map(|kind| {
            core::v1::ServiceKind::try_from(*kind)
                .unwrap_or_default()
                .wire_name()
                .to_owned()
        })
        .collect()
}

wire_names! {
    core::v1::BookingStatus => "BOOKING_STATUS_",
    core::v1::ServiceKind => "SERVICE_KIND_",
    core::v1::BookingAction => "BOOKING_ACTION_",
    core::v1::Role => "ROLE_",
}

#[cfg(test)]
mod tests {
    use super::core::v1::{BookingAction, BookingStatus, ServiceKind};

    #[test]
    fn the_enums_and_the_strings_beside_them_name_alike() {
        assert_eq!(BookingStatus::InProgress.wire_name(), "in_progress");
        assert_eq!(
            BookingStatus::from_wire_name("in_progress"),
            BookingStatus::InProgress
        );
        assert_eq!(
            ServiceKind::from_wire_name("move_out"),
            ServiceKind::MoveOut
        );
        assert_eq!(BookingAction::Complete.wire_name(), "complete");
        assert_eq!(BookingStatus::Unspecified.wire_name(), "");
        for unknown in ["", "MOVE_OUT", "unspecified", "windows"] {
            assert_eq!(
                ServiceKind::from_wire_name(unknown),
                ServiceKind::Unspecified,
                "{unknown}"
            );
        }
    }
}

/// The encoded `FileDescriptorSet` of every Spruce proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/spruce_descriptor.bin"));
