//! The build script of each service crate (`build = "../../build/services/build.rs"`; named
//! `build.rs`, as tools such as cargo-chef expect a build script to be): links its binaries
//! with packed relative relocations (`DT_RELR`, glibc 2.36 and binutils 2.38 or later). A
//! position-independent Rust binary carries about a megabyte of relocations, which the loader
//! reads at start and which then stay resident; packed, they take a few kilobytes.

fn main() {
    println!("cargo::rerun-if-changed=../../build/services/build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
