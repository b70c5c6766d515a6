#!/usr/bin/env bash
# `make compose-check`: the images and the compose stack, run for real on this machine.
# Installs what is missing from Debian's packages (docker.io, docker-compose, debootstrap,
# jq), starts dockerd if none answers, makes every image from Debian packages
# (scripts/local-images.sh), brings docker/compose.yaml up under a project of its own with
# every host port picked free (so it runs beside `make run`), waits for the gateway, runs
# scripts/e2e.py (the end-to-end suite), the walk-throughs (scripts/readme-walk.sh) and the
# API's check against its document (scripts/api-check.sh: a generated client's walk and
# schemathesis) against it, and takes the stack down again (volumes too). On a failure it prints the services' logs.
# Run as root. KEEP=1 leaves the stack running.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v jq >/dev/null || missing+=(jq)
if ((${#missing[@]})); then
    echo "compose-check: installing ${missing[*]}"
    # Stale package lists on a new machine: refresh them once and try again.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }
fi
if ! docker info >/dev/null 2>&1; then
    echo "compose-check: starting dockerd (log: /var/log/spruce-dockerd.log)"
    nohup dockerd >/var/log/spruce-dockerd.log 2>&1 &
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null
fi

scripts/local-images.sh

export SPRUCE_POSTGRES_IMAGE=spruce-local/postgres:bookworm
export SPRUCE_RABBITMQ_IMAGE=spruce-local/rabbitmq:bookworm
export SPRUCE_REDIS_IMAGE=spruce-local/redis:bookworm
export SPRUCE_OTLP_ENDPOINT=
for port in GATEWAY POSTGRES AMQP RABBITMQ_UI REDIS; do export "SPRUCE_${port}_PORT=0"; done
project="spruce-check-$$"
compose() { docker-compose -p "$project" -f docker/compose.yaml "$@"; }
stack=(postgres rabbitmq redis migrate core search scheduler gateway)

finish() {
    local status=$?
    if ((status != 0)); then
        echo "compose-check: FAILED; the services' logs follow" >&2
        compose logs --no-color --tail 80 "${stack[@]}" >&2 || true
    fi
    if [[ "${KEEP:-0}" != 1 ]]; then compose down -v --remove-orphans >/dev/null 2>&1 || true; fi
    exit "$status"
}
trap finish EXIT

started=$(date +%s)
compose up -d --no-build "${stack[@]}"
port=$(compose port gateway 8080 | sed 's/.*://')
base="http://127.0.0.1:$port"
for _ in $(seq 1 120); do
    curl -fsS "$base/readyz" >/dev/null 2>&1 && break
    sleep 1
done
curl -fsS "$base/readyz" >/dev/null
echo "compose-check: the stack is ready at $base after $(($(date +%s) - started)) s"
# search loads its read model from core after start: wait until it serves too.
for _ in $(seq 1 60); do
    [[ "$(compose ps -q search | xargs docker inspect -f '{{.State.Health.Status}}')" == healthy ]] && break
    sleep 1
done

scripts/e2e.py "$base"
scripts/readme-walk.sh "$base"
scripts/api-check.sh "$base"
echo "compose-check: ok"
