#!/usr/bin/env bash
# One tick of each clock job over the scale data set (BENCHMARKS.md, "Clock jobs"): release
# builds of the four services, core on `seed --scale 100000` plus OPEN requested bookings
# without a cleaner (and EXPIRED requested bookings made three hours ago), search loaded
# from it, a fresh scheduler with every job's clock switched off. Each job is then run by
# hand through `POST /v1/admin/jobs/{name}/run`, one after another, and its run printed:
# the time from start to finish (the runner's own record), items and detail.
# Listens on the usual ports: stop `make run` first.
#
#   scripts/bench-jobs.sh                    # 10,000 open bookings, 1,000 expired ones
#   OPEN=2000 RESEED=no scripts/bench-jobs.sh   # reuse the seeded database
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-target}"
bin="$target_dir/release"
open="${OPEN:-10000}"
expired="${EXPIRED:-1000}"
core_db=spruce_jobs_core
search_db=spruce_jobs_search
scheduler_db=spruce_jobs_scheduler
export SPRUCE_CONFIG_DIR=/nonexistent SPRUCE_ENV=local SPRUCE__DATABASE__SSL_MODE=disable
export SPRUCE__TELEMETRY__LOG_FORMAT=json SPRUCE__TELEMETRY__LOG_LEVEL=warn
logs=$(mktemp -d)
sql() { psql -h 127.0.0.1 -U postgres -d "$core_db" -qtAc "$1"; }

cargo build --release --bins --quiet
for port in 8080 50051 50052 50053 9091 9092 9093; do
    if ss -ltnH "sport = :$port" | grep -q .; then
        echo "bench-jobs: port $port is taken; stop make run first" >&2
        exit 1
    fi
done
for database in "$search_db" "$scheduler_db"; do
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)"
done
if [[ ${RESEED:-yes} == yes ]]; then
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $core_db WITH (FORCE)"
    SPRUCE__DATABASE__NAME=$core_db "$bin/spruce-core" migrate
    SPRUCE__DATABASE__NAME=$core_db "$bin/spruce-core" seed --scale 100000
fi
SPRUCE__DATABASE__NAME=$core_db "$bin/spruce-core" migrate
# Open bookings: one per customer (their first address), spread over the next two weeks
# between 08:00 and 15:00 UTC, two hours each; the expired ones were made three hours ago.
sql "DELETE FROM bookings WHERE idempotency_key LIKE 'bench-jobs-%'"
sql "INSERT INTO bookings (id, customer_id, address_id, service, starts_at, ends_at,
         duration_min, price_cents, currency, status, idempotency_key, request_hash, created_at)
     SELECT gen_random_uuid(), a.customer_id, a.id, 'standard',
            date_trunc('day', now()) + ((n % 14) + 2) * interval '1 day' + ((n % 8) + 8) * interval '1 hour',
            date_trunc('day', now()) + ((n % 14) + 2) * interval '1 day' + ((n % 8) + 10) * interval '1 hour',
            120, 5000, 'EUR', 'requested', 'bench-jobs-' || n, '\\x00',
            CASE WHEN n > $open THEN now() - interval '3 hours' ELSE now() END
     FROM (SELECT id, customer_id, row_number() OVER (ORDER BY customer_id) AS n
           FROM (SELECT DISTINCT ON (customer_id) id, customer_id FROM addresses
                 ORDER BY customer_id, created_at) first) a
     WHERE n <= $open + $expired"
echo "core: $(sql "SELECT count(*) FROM bookings WHERE status = 'requested' AND cleaner_id IS NULL") requested bookings without a cleaner"

pids=()
trap 'for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
SPRUCE__DATABASE__NAME=$core_db SPRUCE__DATABASE__MAX_CONNECTIONS=20 "$bin/spruce-core" serve >"$logs/core.log" 2>&1 &
pids+=("$!")
SPRUCE__DATABASE__NAME=$search_db "$bin/spruce-search" serve >"$logs/search.log" 2>&1 &
pids+=("$!")
scheduler_env=(SPRUCE__DATABASE__NAME=$scheduler_db SPRUCE__RUNNER__POLL=100ms)
for job in booking-reminders expire-unconfirmed auto-assign retrain-duration-model; do
    scheduler_env+=("SPRUCE__JOBS__${job^^}__ENABLED=false")
done
env "${scheduler_env[@]}" "$bin/spruce-scheduler" serve >"$logs/scheduler.log" 2>&1 &
pids+=("$!")
"$bin/spruce-gateway" serve >"$logs/gateway.log" 2>&1 &
pids+=("$!")
started=$(date +%s)
for url in http://127.0.0.1:9091/readyz http://127.0.0.1:9092/readyz http://127.0.0.1:9093/readyz http://127.0.0.1:8080/healthz; do
    for _ in $(seq 1 1200); do curl -fsS "$url" >/dev/null 2>&1 && break; sleep 0.1; done
done
echo "services ready after $(($(date +%s) - started)) s (search loads the scale set)"

admin=$(curl -fsS -X POST localhost:8080/v1/auth/login -H 'content-type: application/json' \
    -d '{"email":"admin@spruce.test","password":"spruce-dev-password"}' | jq -r .access_token)
for job in ${JOBS:-expire-unconfirmed auto-assign booking-reminders retrain-duration-model}; do
    run_id=$(curl -fsS -X POST "localhost:8080/v1/admin/jobs/$job/run" -H "authorization: Bearer $admin" | jq -r .id)
    while true; do
        run=$(curl -fsS "localhost:8080/v1/admin/jobs/$job/runs?limit=5" -H "authorization: Bearer $admin" |
            jq -c --arg id "$run_id" '.items[] | select(.id == $id)')
        outcome=$(jq -r .outcome <<<"$run")
        [[ $outcome == queued || $outcome == running ]] || break
        sleep 0.2
    done
    jq -r --arg job "$job" '
        def t: (sub("\\.[0-9]+Z$"; "Z") | fromdate) + ((capture("(?<f>\\.[0-9]+)Z$") | .f | tonumber) // 0);
        "\($job): \(.outcome) in \((.finished_at | t) - (.started_at | t) | . * 1000 | round / 1000) s, \(.items) items: \(.detail) \(.error)"' <<<"$run"
done
echo "logs: $logs"
