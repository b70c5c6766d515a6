#!/usr/bin/env bash
# What compiling the workspace needs beyond Rust, installed when missing (as root, or through
# sudo): `protoc` and the protobuf well-known types, Debian's protobuf-compiler and
# libprotobuf-dev, with which open-feature-flagd's build compiles flagd's sync protocol (our
# own protos compile without them). Elsewhere: install protoc (brew install protobuf) or
# point PROTOC at one.
set -euo pipefail
[[ -n ${PROTOC:-} ]] && exit 0
command -v protoc >/dev/null && [[ -e /usr/include/google/protobuf/struct.proto ]] && exit 0
as_root=()
[[ "$(id -u)" == 0 ]] || as_root=(sudo)
echo "build-tools: installing protobuf-compiler and libprotobuf-dev (protoc)"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends protobuf-compiler libprotobuf-dev >/dev/null \
    || { "${as_root[@]}" apt-get update -qq && "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends protobuf-compiler libprotobuf-dev >/dev/null; }
