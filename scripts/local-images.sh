#!/usr/bin/env bash
# Every image the compose stack needs, made on this machine from Debian packages, for a
# machine that reaches no image registry (only Debian's mirror):
#   spruce-local/debian:bookworm    debootstrap --variant=minbase, then docker import
#   spruce-local/runtime:bookworm   the services' runtime base (docker/local/runtime.Dockerfile)
#   spruce-local/{postgres,rabbitmq,redis}:bookworm   the datastores (docker/local/*.Dockerfile)
#   spruce-{core,search,scheduler,gateway}:local      docker/Dockerfile's `prebuilt` target, with
#                                   the release binaries built here by cargo (the Dockerfile's
#                                   builder stage needs the public Rust image)
# The debootstrap base is kept once made (REBUILD_BASES=1 makes it again); the other images
# are built each time, from Docker's layer cache where nothing changed. Prints each image's
# size. Needs root (debootstrap) and a running dockerd:
# scripts/compose-check.sh installs and starts what is missing, then calls this.
set -euo pipefail
cd "$(dirname "$0")/.."

MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SERVICES=(core search scheduler gateway)
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"

has_image() { docker image inspect "$1" >/dev/null 2>&1; }

if [[ "${REBUILD_BASES:-0}" == 1 ]] || ! has_image spruce-local/debian:bookworm; then
    rootfs="$(mktemp -d /var/tmp/spruce-rootfs.XXXXXX)"
    trap 'rm -rf "$rootfs"' EXIT
    echo "local-images: debootstrap bookworm (about two minutes)"
    debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >/dev/null
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import - spruce-local/debian:bookworm >/dev/null
    rm -rf "$rootfs"
fi

base_image() { # name dockerfile
    echo "local-images: spruce-local/$1:bookworm"
    docker build -q -f "docker/local/$2" -t "spruce-local/$1:bookworm" docker/local >/dev/null
}
base_image runtime runtime.Dockerfile
base_image postgres postgres.Dockerfile
base_image rabbitmq rabbitmq.Dockerfile
base_image redis redis.Dockerfile

echo "local-images: cargo build --release (the four services)"
./scripts/build-tools.sh
cargo build --release --locked --quiet $(printf -- '--bin spruce-%s ' "${SERVICES[@]}")
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
for service in "${SERVICES[@]}"; do
    cp "$target_dir/release/spruce-$service" "$context/"
    docker build -q -f docker/Dockerfile --target prebuilt \
        --build-arg SERVICE="$service" --build-arg RUNTIME_IMAGE=spruce-local/runtime:bookworm \
        -t "spruce-$service:local" "$context" >/dev/null
done

# The images these replaced, left untagged: each run would otherwise keep ~160 MB more.
docker image prune -f >/dev/null

docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' \
    | grep -E '^(spruce-local/|spruce-(core|search|scheduler|gateway):local )' | sort
