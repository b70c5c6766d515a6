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

/// The encoded `FileDescriptorSet` of every Spruce proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/spruce_descriptor.bin"));
