#!/usr/bin/env bash
# Load figures for BENCHMARKS.md: release builds of gateway, core and scheduler, and the load
# generator, all on this machine, against a freshly seeded database of their own (so the
# bookings table starts at the same size every time). It listens on the usual ports: stop
# `make run` first.
#
#   scripts/bench.sh            # every run below
#   scripts/bench.sh get        # only the GET runs
#   scripts/bench.sh create     # only the POST runs (relay on and off, alternating)
#
# Settings for a machine whose two cores are shared by every process (see BENCHMARKS.md):
# one tokio worker thread per service (SERVICE_THREADS; the load generator keeps its default), core's pool at 16 connections, PostgreSQL over
# loopback without TLS. Override any of them through the environment.
set -euo pipefail
cd "$(dirname "$0")/.."

which="${1:-all}"
target_dir="${CARGO_TARGET_DIR:-target}"
bin="$target_dir/release"
export SPRUCE_CONFIG_DIR=/nonexistent SPRUCE_ENV=local
service_threads="${SERVICE_THREADS:-1}"
export SPRUCE__DATABASE__SSL_MODE="${SPRUCE__DATABASE__SSL_MODE:-disable}"
export SPRUCE__TELEMETRY__LOG_FORMAT=json
core_db=spruce_bench_core
scheduler_db=spruce_bench_scheduler
logs=$(mktemp -d)

cargo build --release --bins --quiet

for port in 8080 50051 50053 9091 9093; do
    if ss -ltnH "sport = :$port" | grep -q .; then
        echo "bench: port $port is taken (a running make run or an earlier bench?); stop it first" >&2
        exit 1
    fi
done

pids=()
stop_all() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
}
trap stop_all EXIT

wait_ready() {
    for _ in $(seq 1 100); do
        curl -fsS "$1" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "bench: $1 never became ready (logs in $logs)" >&2
    exit 1
}

start() { # $1 = core's relay on/off
    stop_all
    TOKIO_WORKER_THREADS=$service_threads SPRUCE__DATABASE__NAME=$core_db \
        SPRUCE__DATABASE__MAX_CONNECTIONS="${POOL:-16}" SPRUCE__OUTBOX__RELAY="$1" \
        "$bin/spruce-core" serve >"$logs/core.log" 2>&1 &
    pids+=("$!")
    TOKIO_WORKER_THREADS=$service_threads SPRUCE__DATABASE__NAME=$scheduler_db \
        "$bin/spruce-scheduler" serve >"$logs/scheduler.log" 2>&1 &
    pids+=("$!")
    wait_ready http://127.0.0.1:9091/readyz
    for pid in "${pids[@]}"; do
        state=$(ps -o stat= -p "$pid" || true)
        [[ -n $state && $state != Z* ]] || { echo "bench: a service exited (logs in $logs)" >&2; exit 1; }
    done
    TOKIO_WORKER_THREADS=$service_threads "$bin/spruce-gateway" serve >"$logs/gateway.log" 2>&1 &
    pids+=("$!")
    wait_ready http://127.0.0.1:8080/readyz
}

for db in $core_db $scheduler_db; do
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
done
SPRUCE__DATABASE__NAME=$core_db "$bin/spruce-core" seed >"$logs/seed.log" 2>&1

if [[ $which == all || $which == get ]]; then
    start true
    echo "== GET /v1/bookings/{id}, 64 connections, as fast as it goes"
    "$bin/spruce-loadgen" get-booking --concurrency 64 --seconds 10
    for run in 1 2 3; do
        echo "== GET /v1/bookings/{id} at 2,000/s, open loop (run $run)"
        "$bin/spruce-loadgen" get-booking --rate 2000 --seconds 10
    done
fi

if [[ $which == all || $which == create ]]; then
    # Relay on and off alternate, so both see the same table sizes and the same machine.
    for run in 1 2 3; do
        for relay in true false; do
            start $relay
            echo "== POST /v1/bookings, 32 connections, relay $relay (run $run)"
            "$bin/spruce-loadgen" create-booking --concurrency 32 --seconds 10
            if [[ $relay == false ]]; then
                # What the relay-off run left unpublished would otherwise be published
                # during the next relay-on run and count against it.
                stop_all
                psql -h 127.0.0.1 -U postgres -d $core_db -qc \
                    "UPDATE outbox SET published_at = now() WHERE published_at IS NULL"
            fi
        done
    done
fi
echo "bench: service logs in $logs"
