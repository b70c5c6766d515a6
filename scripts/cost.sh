#!/usr/bin/env bash
# What a booking and a read cost the whole system, this tree (A) against another build (B)
# in one run: release builds of the four services, each on databases, an exchange and queues
# of its own, the load from spruce-loadgen, the CPU from /proc.
#
#   scripts/cost.sh            # booking and read runs
#   scripts/cost.sh booking    # POST /v1/bookings only: 32 connections, closed loop
#                              # (BOOKING_RATE=R: R a second, open loop)
#   scripts/cost.sh read       # GET /v1/bookings/{id} only: 32 connections, closed loop
#                              # (READ_RATE=R: R a second, open loop)
#   scripts/cost.sh relay      # the outbox relay alone: pgbench commits RELAY_RATE (1,000)
#                              # events a second into core's outbox, open loop, each a copy
#                              # of a real booking.created under an id of its own
#
# Each run starts all four services afresh (one tokio worker each), waits for the loadgen's
# setup (logins, addresses) to end, applies the load, then waits until every event is
# published and every queue of the run's exchange is empty, so downstream consumers are
# counted. It prints, per run: requests, throughput and p50/p99; CPU ms per request for
# each process group (PostgreSQL, RabbitMQ, Redis, each service; the client excluded); and the
# outbox's commit → publish p50/p99 with the rows unpublished when the load stopped and 1 s
# later. Rounds alternate A B, B A, so neither build always runs first; the summary gives
# each build's mean and B/A per round.
#
# Environment: COST_BASE, the git revision B is built from (default main; "none": A alone);
# RUNS (rounds, 3); SECONDS_PER_RUN (10); CONNECTIONS (32, closed loop); BOOKING_RATE and
# READ_RATE (open loop instead); SERVICE_THREADS (1); POOL (core's connections, 16);
# IDLE_SECONDS (8: how long after the load the idle memory is read); PERF=1 records every
# CPU (`perf record -a`) during each load into the logs folder, for `perf report --sort
# comm,dso,symbol -i FILE`; FLAME=1 records call stacks instead (unwound from .eh_frame) and
# draws a flame graph of each load, <scenario>-<build>-<round>.svg, with inferno (`cargo
# install inferno`). It listens on the usual ports: stop `make run` first.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/measure.sh
source scripts/measure.sh

which="${1:-all}"
case $which in all | booking | read | relay) ;; *)
    echo "usage: scripts/cost.sh [booking|read|relay]" >&2
    exit 2
    ;;
esac
base="${COST_BASE:-main}"
runs="${RUNS:-3}"
seconds="${SECONDS_PER_RUN:-10}"
connections="${CONNECTIONS:-32}"
relay_rate="${RELAY_RATE:-1000}"
threads="${SERVICE_THREADS:-1}"
pool="${POOL:-16}"
work=/var/tmp/spruce-cost
logs=$(mktemp -d)
export SPRUCE_CONFIG_DIR=/nonexistent SPRUCE_ENV=local
export SPRUCE__DATABASE__SSL_MODE=disable SPRUCE__TELEMETRY__LOG_FORMAT=json
export SPRUCE__SEARCH_THROTTLE__MAX_PER_USER=1000000000
export PGOPTIONS="-c client_min_messages=warning"

for port in 8080 50051 50052 50053 9091 9092 9093; do
    if ss -ltnH "sport = :$port" | grep -q .; then
        echo "cost: port $port is taken (a running make run?); stop it first" >&2
        exit 1
    fi
done

# The binaries of each build: B from COST_BASE's tree, built once per commit and kept in
# /var/tmp/spruce-cost; then A from this tree. B builds in a target folder of its own: the
# two trees' crates have the same names, and cargo tells them apart by the files' times,
# which `git archive` sets to the commit's (older than A's last build), so in A's folder
# B's build would take A's compiled crates (and A's generated gRPC code) for its own. For
# the same reason B's files are dated now, newer than any earlier B's build.
declare -A bin built
built[a]="this tree at $(git rev-parse --short HEAD)"
variants=(a)
if [[ $base != none ]]; then
    commit=$(git rev-parse --verify "$base^{commit}")
    bin[b]="$work/bin-${commit:0:12}"
    echo "cost: B is $base ($commit)"
    built[b]="$base"
    if [[ ! -x ${bin[b]}/spruce-gateway ]]; then
        tree="$work/src-${commit:0:12}"
        rm -rf "$tree" && mkdir -p "$tree"
        git archive "$commit" | tar -x -C "$tree"
        find "$tree" -exec touch {} +
        target_dir="$work/target-b"
        (cd "$tree" && CARGO_TARGET_DIR="$target_dir" cargo build --release --bins --quiet)
        mkdir -p "${bin[b]}.partial"
        for service in core search scheduler gateway; do
            cp "$target_dir/release/spruce-$service" "${bin[b]}.partial/"
        done
        mv "${bin[b]}.partial" "${bin[b]}"
        rm -rf "$tree"
    fi
    variants=(a b)
fi
cargo build --release --bins --quiet
bin[a]="${CARGO_TARGET_DIR:-target}/release"

pids=()
stop_all() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait "${pids[@]}" 2>/dev/null || true
    pids=()
}
trap stop_all EXIT

sql() { psql -h 127.0.0.1 -U postgres -d "$1" -XAtqc "$2"; }

start() { # $1 = variant
    local v=$1 b=${bin[$1]}
    stop_all
    for service in core search scheduler; do
        sql "spruce_cost_${v}_$service" "VACUUM (ANALYZE)" 2>/dev/null || true
    done
    sql postgres "CHECKPOINT"
    export SPRUCE__BUS__EXCHANGE="spruce.cost.$v"
    TOKIO_WORKER_THREADS=$threads SPRUCE__DATABASE__NAME="spruce_cost_${v}_core" \
        SPRUCE__DATABASE__MAX_CONNECTIONS=$pool \
        "$b/spruce-core" serve >>"$logs/$v-core.log" 2>&1 &
    pids+=("$!")
    wait_ready http://127.0.0.1:9091/readyz
    TOKIO_WORKER_THREADS=$threads SPRUCE__DATABASE__NAME="spruce_cost_${v}_search" \
        SPRUCE__BUS__QUEUE_PREFIX="cost-$v-search" SPRUCE__READ_MODEL__REPLICA=r1 \
        "$b/spruce-search" serve >>"$logs/$v-search.log" 2>&1 &
    pids+=("$!")
    # No clock job runs: auto-assign would match the load's open bookings at a moment of
    # its own, and the two builds would not do the same work.
    env TOKIO_WORKER_THREADS="$threads" SPRUCE__DATABASE__NAME="spruce_cost_${v}_scheduler" \
        SPRUCE__BUS__QUEUE_PREFIX="cost-$v-scheduler" \
        SPRUCE__JOBS__AUTO-ASSIGN__ENABLED=false SPRUCE__JOBS__BOOKING-REMINDERS__ENABLED=false \
        SPRUCE__JOBS__EXPIRE-UNCONFIRMED__ENABLED=false \
        SPRUCE__JOBS__RETRAIN-DURATION-MODEL__ENABLED=false \
        "$b/spruce-scheduler" serve >>"$logs/$v-scheduler.log" 2>&1 &
    pids+=("$!")
    wait_ready http://127.0.0.1:9092/readyz
    wait_ready http://127.0.0.1:9093/readyz
    TOKIO_WORKER_THREADS=$threads "$b/spruce-gateway" serve >>"$logs/$v-gateway.log" 2>&1 &
    pids+=("$!")
    wait_ready http://127.0.0.1:8080/readyz
}

# Transactions committed so far in each of the run's databases, as "service count" lines.
commits() {
    sql postgres "SELECT substring(datname from '[^_]+$'), xact_commit FROM pg_stat_database
        WHERE datname LIKE 'spruce_cost_$1_%' ORDER BY 1" | tr '|' ' '
}

unpublished() { sql "spruce_cost_$1_core" "SELECT count(*) FROM outbox WHERE published_at IS NULL"; }

# The run's queues still holding messages (ready or unacknowledged), as "name=count"; a
# stream, should a build use one, keeps what was read and is not counted.
queued() {
    rabbitmqctl -q list_queues name messages type 2>&1 |
        awk -v prefix="cost-$1-" 'index($1, prefix) == 1 && $3 != "stream" && $2 != 0 {
            printf "%s=%s ", $1, $2 }'
}

# Waits up to 60 s for every event to be published and consumed.
drain() {
    local outbox waiting
    for _ in $(seq 1 120); do
        outbox=$(unpublished "$1")
        waiting=$(queued "$1")
        [[ $outbox == 0 && -z $waiting ]] && return 0
        sleep 0.5
    done
    echo "cost: the $1 run did not drain within 60 s (unpublished: $outbox; queued: $waiting)" >&2
}

# Seeds each build's own databases with its own binary (the schema is the build's), and
# removes the queues an earlier run left (one a build no longer consumes would fill up).
rabbitmqctl -q list_queues --no-table-headers name 2>/dev/null | { grep '^cost-' || true; } |
    while read -r queue; do rabbitmqctl -q delete_queue "$queue" >/dev/null; done
for v in "${variants[@]}"; do
    for service in core search scheduler; do
        sql postgres "DROP DATABASE IF EXISTS spruce_cost_${v}_$service WITH (FORCE)"
    done
    SPRUCE__DATABASE__NAME="spruce_cost_${v}_core" "${bin[$v]}/spruce-core" seed \
        >"$logs/$v-seed.log" 2>&1
done

# The relay's load: pgbench commits $relay_rate outbox rows a second (open loop, Poisson
# arrivals) for $seconds, printing the loadgen's markers and summary line around it.
relay_load() { # $1 = variant
    local db="spruce_cost_$1_core" template count
    template=$(sql "$db" "SELECT min(id) FROM outbox WHERE routing_key = 'booking.created'")
    if [[ -z $template ]]; then
        echo "cost: no booking.created event to copy in $db" >&2
        return 1
    fi
    cat >"$logs/relay.sql" <<SQL
INSERT INTO outbox (event_id, routing_key, payload, traceparent)
SELECT gen_random_uuid(), routing_key, payload, traceparent FROM outbox WHERE id = $template;
SQL
    echo "load: started"
    pgbench -h 127.0.0.1 -U postgres -n -c 8 -j 1 -R "$relay_rate" -T "$seconds" \
        -f "$logs/relay.sql" "$db" >"$logs/pgbench-$1.out" 2>&1
    echo "load: stopped"
    count=$(awk '/actually processed/ { print $NF }' "$logs/pgbench-$1.out")
    awk -v count="$count" '/^tps/ { tps = $3 }
        END { printf "requests %d = %d/s; latency ms p50 - p99 -; statuses {201: %d}\n",
            count, tps, count }' "$logs/pgbench-$1.out"
}

results="$logs/results"
measure() { # $1 = scenario, $2 = variant, $3 = round
    local scenario=$1 v=$2 round=$3 since="" stopped_at="" stop_count="" later_pid="" perf_pid="" out="$logs/$1-$2-$3.out"
    start "$v"
    if [[ $scenario == relay ]]; then
        # A few real bookings, whose first booking.created event the load copies.
        "${bin[a]}/spruce-loadgen" create-booking --rate 20 --seconds 1 --customers 4 \
            --exchange "spruce.cost.$v" >"$logs/relay-setup-$v-$round.out" 2>&1
        drain "$v"
    fi
    local load=(create-booking --concurrency "$connections" --customers 40)
    if [[ -n ${BOOKING_RATE:-} ]]; then
        load=(create-booking --rate "$BOOKING_RATE" --customers 40)
    fi
    if [[ $scenario == read ]]; then
        load=(get-booking --concurrency "$connections")
        [[ -n ${READ_RATE:-} ]] && load=(get-booking --rate "$READ_RATE")
    fi
    while IFS= read -r line; do
        echo "$line" >>"$out"
        case $line in
            "load: started")
                if [[ -n ${FLAME:-} ]]; then
                    perf record -q -F 99 -a --call-graph dwarf,16384 \
                        -o "$logs/$scenario-$v-$round.perf" 2>/dev/null &
                    perf_pid=$!
                elif [[ -n ${PERF:-} ]]; then
                    perf record -q -F 499 -a -o "$logs/$scenario-$v-$round.perf" 2>/dev/null &
                    perf_pid=$!
                fi
                process_cpu >"$logs/cpu-before"
                commits "$v" >"$logs/commits-before"
                since=$(sql "spruce_cost_${v}_core" "SELECT now()")
                ;;
            "load: stopped")
                stopped_at=$(date +%s.%N)
                if [[ -n $perf_pid ]]; then kill -INT "$perf_pid" && wait "$perf_pid" || true; fi
                stop_count=$(unpublished "$v")
                (sleep 1 && unpublished "$v" >"$logs/after-1s") &
                later_pid=$!
                ;;
        esac
    done < <(if [[ $scenario == relay ]]; then relay_load "$v"; else
        "${bin[a]}/spruce-loadgen" "${load[@]}" --seconds "$seconds" --exchange "spruce.cost.$v"
    fi)
    if [[ -z $since || -z $later_pid ]]; then
        echo "cost: the loadgen did not run its load (see $out)" >&2
        exit 1
    fi
    wait "$later_pid"
    drain "$v"
    process_cpu >"$logs/cpu-after"
    sleep 1 # PostgreSQL reports its counters at most once a second
    commits "$v" >"$logs/commits-after"
    # Resident memory of each service once the load has run and drained, and nothing has
    # come for IDLE_SECONDS (core's hashing threads give their memory back after 5 s idle).
    sleep "$(awk -v wait="${IDLE_SECONDS:-8}" -v since="$stopped_at" -v now="$(date +%s.%N)" \
        'BEGIN { left = since + wait - now; print (left > 0 ? left : 0) }')"
    # RssAnon is what the service allocated; the rest of VmRSS is mapped files (its code).
    # Each mapping's share is kept in the logs folder, <scenario>-<build>-<round>-<service>.smaps.
    local rss="" anon="" service name pid
    for service in core search scheduler gateway; do
        name="spruce-$service" # as the kernel keeps it: 15 characters
        pid=$(pgrep -nx "${name:0:15}")
        rss+=" $service $(awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status")"
        anon+=" $service $(awk '/^RssAnon/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status")"
        cp "/proc/$pid/smaps" "$logs/$scenario-$v-$round-$service.smaps"
    done
    local lag
    lag=$(sql "spruce_cost_${v}_core" "SELECT
        coalesce(round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)), 0) || ' ' ||
        coalesce(round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)), 0)
        FROM (SELECT 1000 * extract(epoch FROM published_at - created_at) AS ms
              FROM outbox WHERE created_at >= '$since' AND published_at IS NOT NULL) lags")
    awk -v scenario="$scenario" -v v="$v" -v round="$round" -v lag="$lag" \
        -v stopped="$stop_count" -v later="$(cat "$logs/after-1s")" -v rss="$rss" -v anon="$anon" '
        FILENAME == ARGV[1] { before[$1] = $2; next }
        FILENAME == ARGV[2] { spent[$1] = $2 - before[$1]; next }
        FILENAME == ARGV[3] { committed[$1] = -$2; next }
        FILENAME == ARGV[4] { committed[$1] += $2; next }
        /^requests / {
            split($0, parts, "= "); rate = parts[2] + 0
            for (i = 1; i <= NF; i++) {
                if ($i == "p50") p50 = $(i + 1)
                if ($i == "p99") p99 = $(i + 1)
            }
            ok = 0
            while (match($0, /(200|201): [0-9]+/)) {
                split(substr($0, RSTART, RLENGTH), pair, ": "); ok += pair[2]
                $0 = substr($0, RSTART + RLENGTH)
            }
        }
        END {
            split("postgres beam.smp redis-server spruce-core spruce-search spruce-schedule spruce-gateway", names, " ")
            split("postgres rabbitmq redis core search scheduler gateway", shown, " ")
            line = ""; total = 0
            for (i = 1; i <= 7; i++) {
                ms = ok ? spent[names[i]] * 10 / ok : 0; total += ms
                line = line sprintf(" %s %.3f", shown[i], ms)
            }
            commit_line = ""
            for (db in committed) commit_line = commit_line sprintf(" %s %.2f", db, ok ? committed[db] / ok : 0)
            split(lag, l, " ")
            split(rss, r, " "); mb = r[2] + r[4] + r[6] + r[8]
            split(anon, a, " "); anon_mb = a[2] + a[4] + a[6] + a[8]
            printf "%s %s round %d: %d ok, %d/s, p50 %s p99 %s ms; CPU ms a request:%s = %.3f; commits a request:%s; outbox commit->publish p50 %s p99 %s ms, unpublished at stop %s, 1 s later %s; idle RSS MB after:%s = %.1f (anonymous:%s = %.1f)\n",
                scenario, toupper(v), round, ok, rate, p50, p99, line, total, commit_line, l[1], l[2], stopped, later, rss, mb, anon, anon_mb
            printf "%s\t%s\t%d\t%.4f\t%d\n", scenario, v, round, total, rate >>"'"$results"'"
        }' "$logs/cpu-before" "$logs/cpu-after" "$logs/commits-before" "$logs/commits-after" "$out"
    if [[ -n ${FLAME:-} ]]; then
        # Each service's threads under its name (tokio names them alike in every service),
        # every other process under its command's name.
        local rename="" index=0
        for service in core search scheduler gateway; do
            rename+="s/^[^;]*-${pids[$index]};/spruce-$service;/;"
            index=$((index + 1))
        done
        perf script -F comm,pid,tid,time,event,ip,sym,dso -i "$logs/$scenario-$v-$round.perf" \
            2>/dev/null |
            inferno-collapse-perf --pid | sed -E "${rename}s/^([^;]*)-[0-9]+;/\1;/" |
            inferno-flamegraph --minwidth 0.1 --title "$scenario, ${built[$v]}, round $round" \
                >"$logs/$scenario-$v-$round.svg"
    fi
}

scenarios=()
[[ $which == all || $which == booking ]] && scenarios+=(booking)
[[ $which == all || $which == read ]] && scenarios+=(read)
[[ $which == relay ]] && scenarios+=(relay)
for scenario in "${scenarios[@]}"; do
    for round in $(seq 1 "$runs"); do
        order=("${variants[@]}")
        if ((round % 2 == 0)) && ((${#variants[@]} == 2)); then order=(b a); fi
        for v in "${order[@]}"; do measure "$scenario" "$v" "$round"; done
    done
done
stop_all

echo "== summary (A: this tree; B: $base)"
awk -F'\t' '
    { cpu[$1, $2] += $4; rate[$1, $2] += $5; n[$1, $2]++; per[$1, $2, $3] = $4; seen[$1] = 1 }
    END {
        for (s in seen) {
            line = s ":"
            for (i = 1; i <= 2; i++) {
                v = i == 1 ? "a" : "b"
                if (!n[s, v]) continue
                line = line sprintf(" %s %.3f ms CPU a request, %d/s;", toupper(v), cpu[s, v] / n[s, v], rate[s, v] / n[s, v])
            }
            if (n[s, "b"]) {
                line = line " B/A by round:"
                for (r = 1; (s, "a", r) in per; r++) line = line sprintf(" %.2f", per[s, "b", r] / per[s, "a", r])
            }
            print line
        }
    }' "$results"
echo "cost: service logs in $logs"
