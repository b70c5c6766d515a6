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
# one tokio worker thread per service (SERVICE_THREADS, or CORE_THREADS / GATEWAY_THREADS
# for one of them; the load generator keeps its default), core's pool at 16 connections
# (POOL), 32 connections for the POST runs (POST_CONNECTIONS) taking turns between the 40
# seeded customers (CUSTOMERS), PostgreSQL over loopback without TLS, three runs of each
# kind (RUNS), 10 seconds each (SECONDS_PER_RUN). CORE_AB=/path/to/another/spruce-core
# adds a relay-on run of that binary to every POST round and a run of it after every GET
# run at 2,000/s, to compare two builds under the same conditions. Override any of them
# through the environment. Every load run ends with the CPU the whole machine spent during
# it; the POST runs end with the publishing cost of each round and of all rounds together.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/measure.sh
source scripts/measure.sh

which="${1:-all}"
target_dir="${CARGO_TARGET_DIR:-target}"
bin="$target_dir/release"
export SPRUCE_CONFIG_DIR=/nonexistent SPRUCE_ENV=local
service_threads="${SERVICE_THREADS:-1}"
core_threads="${CORE_THREADS:-$service_threads}"
gateway_threads="${GATEWAY_THREADS:-$service_threads}"
pool="${POOL:-16}"
post_connections="${POST_CONNECTIONS:-32}"
customers="${CUSTOMERS:-40}"
runs="${RUNS:-3}"
seconds="${SECONDS_PER_RUN:-10}"
export SPRUCE__DATABASE__SSL_MODE="${SPRUCE__DATABASE__SSL_MODE:-disable}"
export SPRUCE__TELEMETRY__LOG_FORMAT=json
# One seeded customer searches at thousands a second here: lift the per-user search limit.
export SPRUCE__SEARCH_THROTTLE__MAX_PER_USER=1000000000
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

# Runs "$@" and then prints the CPU the whole machine spent meanwhile (from /proc/stat;
# "idle" includes I/O wait), and the share of it each long-running process took (the load
# generator has exited by then; it is in the machine's figure): a second view beside the
# rate, per request.
with_cpu() {
    local before after processes_before
    before="$(head -1 /proc/stat) $(awk '/^ctxt/ {print $2}' /proc/stat)"
    processes_before=$(process_cpu)
    local start=$SECONDS
    "$@"
    after="$(head -1 /proc/stat) $(awk '/^ctxt/ {print $2}' /proc/stat)"
    # comm is cut to 15 characters: spruce-scheduler shows as spruce-schedule.
    awk 'NR == FNR { before[$1] = $2; next } { spent[$1] = $2 - before[$1] } END {
        split("spruce-core spruce-gateway spruce-schedule postgres beam.smp", names, " ")
        line = "process CPU s:"
        for (i = 1; i <= 5; i++) line = line sprintf(" %s %.2f", names[i], spent[names[i]] / 100)
        print line
    }' <(echo "$processes_before") <(process_cpu)
    awk -v b="$before" -v a="$after" -v wall=$((SECONDS - start)) 'BEGIN {
        split(b, x); split(a, y); hz = 100
        busy = (y[2]+y[3]+y[4]+y[7]+y[8] - x[2]-x[3]-x[4]-x[7]-x[8]) / hz
        idle = (y[5]+y[6] - x[5]-x[6]) / hz
        steal = (y[9] - x[9]) / hz
        printf "machine CPU over %d s: busy %.1f s, idle %.1f s, steal %.1f s, %d context switches\n", wall, busy, idle, steal, y[12] - x[12]
    }'
}

start() { # $1 = core's relay on/off, $2 = core's binary (default: this build's)
    stop_all
    # Every run starts from a vacuumed database and a fresh checkpoint: otherwise the dead
    # rows and the WAL one run leaves are cleaned up, and paid for, during the next one.
    psql -h 127.0.0.1 -U postgres -d $core_db -qc "VACUUM (ANALYZE)" -c "CHECKPOINT"
    # Another build runs on this build's schema: it does not migrate (an older binary
    # refuses a database with migrations it does not know).
    TOKIO_WORKER_THREADS=$core_threads SPRUCE__DATABASE__NAME=$core_db \
        SPRUCE__DATABASE__MAX_CONNECTIONS=$pool SPRUCE__OUTBOX__RELAY="$1" \
        SPRUCE__DATABASE__MIGRATE_ON_START=$([[ -n ${2:-} ]] && echo false || echo true) \
        "${2:-$bin/spruce-core}" serve >"$logs/core.log" 2>&1 &
    pids+=("$!")
    TOKIO_WORKER_THREADS=$service_threads SPRUCE__DATABASE__NAME=$scheduler_db \
        "$bin/spruce-scheduler" serve >"$logs/scheduler.log" 2>&1 &
    pids+=("$!")
    wait_ready http://127.0.0.1:9091/readyz
    for pid in "${pids[@]}"; do
        state=$(ps -o stat= -p "$pid" || true)
        [[ -n $state && $state != Z* ]] || { echo "bench: a service exited (logs in $logs)" >&2; exit 1; }
    done
    TOKIO_WORKER_THREADS=$gateway_threads "$bin/spruce-gateway" serve >"$logs/gateway.log" 2>&1 &
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
    with_cpu "$bin/spruce-loadgen" get-booking --concurrency 64 --seconds "$seconds"
    for run in $(seq 1 "$runs"); do
        echo "== GET /v1/bookings/{id} at 2,000/s, open loop (run $run)"
        with_cpu "$bin/spruce-loadgen" get-booking --rate 2000 --seconds "$seconds"
        if [[ -n ${CORE_AB:-} ]]; then
            start true "$CORE_AB"
            echo "== GET /v1/bookings/{id} at 2,000/s, open loop, CORE_AB (run $run)"
            with_cpu "$bin/spruce-loadgen" get-booking --rate 2000 --seconds "$seconds"
            start true
        fi
    done
fi

if [[ $which == all || $which == create ]]; then
    # Relay on and off alternate, so both see the same table sizes and the same machine.
    # CORE_AB=/path/to/another/spruce-core adds a relay-on run of that binary to every round:
    # an A/B of two relays under the same conditions. The order within a round reverses
    # every other round, so that no variant always runs first (A/Bs showed position
    # effects within a round; see BENCHMARKS.md).
    for run in $(seq 1 "$runs"); do
        order="true ${CORE_AB:+ab} false"
        if ((run % 2 == 0)); then order="false ${CORE_AB:+ab} true"; fi
        for variant in $order; do
            case $variant in
                ab) start true "$CORE_AB" ;;
                *) start "$variant" ;;
            esac
            # Kept in post.out as well, for the summary below.
            echo "== POST /v1/bookings, $post_connections connections, relay $variant (run $run)" |
                tee -a "$logs/post.out"
            with_cpu "$bin/spruce-loadgen" create-booking --concurrency "$post_connections" \
                --customers "$customers" --seconds "$seconds" | tee -a "$logs/post.out"
            if [[ $variant == false ]]; then
                # What the relay-off run left unpublished would otherwise be published
                # during the next relay-on run and count against it.
                stop_all
                psql -h 127.0.0.1 -U postgres -d $core_db -qc \
                    "UPDATE outbox SET published_at = now() WHERE published_at IS NULL"
            fi
        done
    done
    # Publishing cost per round (1 - on/off) and over all rounds (on the mean rates), with
    # the machine CPU per booking; "ab" is the CORE_AB binary's relay-on run.
    awk '
        /^== POST/ { variant = $(NF - 2); run = $NF + 0 }
        /^requests / && variant != "" { split($0, r, "= "); rate[run, variant] = r[2] + 0; n[run, variant] = $2 }
        /^process CPU/ && variant != "" {
            for (i = 4; i <= NF; i += 2) cpu[run, variant, $i] = $(i + 1)
        }
        /^machine CPU/ && variant != "" { busy[run, variant] = $7; variant = "" }
        END {
            for (run = 1; (run, "false") in rate; run++) {
                off = rate[run, "false"]; offs += off
                line = sprintf("round %d: off %d/s (%d us CPU per booking)", run, off, busy[run, "false"] * 1e6 / n[run, "false"])
                for (i = 1; i <= 2; i++) {
                    v = i == 1 ? "true" : "ab"
                    if (!((run, v) in rate)) continue
                    on = rate[run, v]; sum[v] += on
                    line = line sprintf(", %s %d/s (%d us): cost %.1f %%", v == "true" ? "on" : "ab", on, busy[run, v] * 1e6 / n[run, v], (1 - on / off) * 100)
                }
                print line
                # Where the relay-on run spent more CPU per booking than the relay-off run.
                line = "  on - off, us CPU per booking:"
                split("spruce-core postgres beam.smp spruce-gateway", names, " ")
                for (i = 1; i <= 4; i++) {
                    name = names[i]
                    line = line sprintf(" %s %+d", name, (cpu[run, "true", name] / n[run, "true"] - cpu[run, "false", name] / n[run, "false"]) * 1e6)
                }
                print line
            }
            if (offs > 0) {
                line = sprintf("all rounds: publishing cost %.1f %% on the mean rates", (1 - sum["true"] / offs) * 100)
                if (sum["ab"] > 0) line = line sprintf(" (ab: %.1f %%)", (1 - sum["ab"] / offs) * 100)
                print line
            }
        }' "$logs/post.out"
fi
echo "bench: service logs in $logs"
