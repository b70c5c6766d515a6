//! Compiles the `.proto` files with protox (pure Rust, so no system `protoc` is needed) and
//! writes the file descriptor set that gRPC server reflection serves.

use std::{env, fs, path::PathBuf};

use prost::Message as _;

const PROTO_ROOT: &str = "../../proto";
const FILES: &[&str] = &[
    "spruce/common/v1/errors.proto",
    "spruce/core/v1/users.proto",
    "spruce/core/v1/cleaners.proto",
    "spruce/core/v1/addresses.proto",
    "spruce/core/v1/bookings.proto",
    "spruce/core/v1/reviews.proto",
    "spruce/core/v1/readmodel.proto",
    "spruce/search/v1/search.proto",
    "spruce/scheduler/v1/notifications.proto",
    "spruce/scheduler/v1/jobs.proto",
    "spruce/events/v1/events.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    let descriptors = protox::compile(FILES, [PROTO_ROOT])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("spruce_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
