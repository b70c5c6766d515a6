#!/usr/bin/env bash
# Memory under a burst of the most expensive requests (BENCHMARKS.md, "Password hashing
# burst"): release builds of core and the gateway on a fresh database of their own, then
# SIGNUPS concurrent signups plus LOGINS concurrent logins of unknown emails, all at once.
# Prints core's resident memory before, its peak during the burst (sampled every 50 ms),
# 30 s after, and the count of each answer. The login throttle is opened wide for the run
# (every login reaches core's password check: the worst case for memory); `THROTTLE=on`
# keeps the default limits. Listens on the usual ports: stop `make run` first.
#
#   scripts/burst.sh                       # 200 signups + 200 logins
#   SIGNUPS=100 LOGINS=0 scripts/burst.sh
#   CORE=/path/to/another/spruce-core scripts/burst.sh   # the same burst against another core
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-target}"
bin="$target_dir/release"
core="${CORE:-$bin/spruce-core}"
signups="${SIGNUPS:-200}"
logins="${LOGINS:-200}"
export SPRUCE_CONFIG_DIR=/nonexistent SPRUCE_ENV=local SPRUCE__DATABASE__SSL_MODE=disable
export SPRUCE__TELEMETRY__LOG_FORMAT=json SPRUCE__TELEMETRY__LOG_LEVEL=warn
database=spruce_burst_core
logs=$(mktemp -d)

cargo build --release --bins --quiet
for port in 8080 50051 9091; do
    if ss -ltnH "sport = :$port" | grep -q .; then
        echo "burst: port $port is taken; stop make run first" >&2
        exit 1
    fi
done
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)"

pids=()
trap 'for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
SPRUCE__DATABASE__NAME=$database SPRUCE__OUTBOX__RELAY=false "$core" serve >"$logs/core.log" 2>&1 &
core_pid=$!
pids+=("$core_pid")
# Throttle counts of its own, so earlier runs (and a running stack) do not count.
export SPRUCE__REDIS__KEY_PREFIX="spruce:burst:$RANDOM$RANDOM:"
if [[ ${THROTTLE:-off} == off ]]; then
    export SPRUCE__LOGIN_THROTTLE__MAX_FAILURES_PER_ADDRESS=100000
fi
"$bin/spruce-gateway" serve >"$logs/gateway.log" 2>&1 &
pids+=("$!")
for url in http://127.0.0.1:9091/readyz http://127.0.0.1:8080/healthz; do
    for _ in $(seq 1 100); do curl -fsS "$url" >/dev/null 2>&1 && break; sleep 0.1; done
done

rss_mb() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$core_pid/status"; }
threads() { awk '/^Threads/ {print $2}' "/proc/$core_pid/status"; }
echo "core before: $(rss_mb) MB RSS, $(threads) threads"
peak_file="$logs/peak"
(
    peak=0 peak_threads=0
    while [[ ! -e $logs/done ]]; do
        rss=$(awk '/^VmRSS/ {print $2}' "/proc/$core_pid/status")
        count=$(threads)
        ((rss > peak)) && peak=$rss
        ((count > peak_threads)) && peak_threads=$count
        sleep 0.05
    done
    echo "$peak $peak_threads" >"$peak_file"
) &
sampler=$!

echo "burst: logs in $logs"
python3 - "$signups" "$logins" <<'PY'
import collections, concurrent.futures, http.client, json, sys, time, uuid

signups, logins = int(sys.argv[1]), int(sys.argv[2])

def call(path, body):
    connection = http.client.HTTPConnection("127.0.0.1", 8080, timeout=120)
    connection.request("POST", path, json.dumps(body), {"content-type": "application/json"})
    status = connection.getresponse().status
    connection.close()
    return path.rsplit("/", 1)[1], status

jobs = [("/v1/auth/signup", {"email": f"burst-{uuid.uuid4().hex}@example.com",
                             "password": "correct horse battery", "full_name": "Burst",
                             "role": "customer"}) for _ in range(signups)]
jobs += [("/v1/auth/login", {"email": f"nobody-{uuid.uuid4().hex}@example.com",
                             "password": "guessing"}) for _ in range(logins)]
started = time.monotonic()
with concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs)) as pool:
    answers = collections.Counter(pool.map(lambda job: call(*job), jobs))
print(f"burst of {len(jobs)} requests took {time.monotonic() - started:.1f} s")
for (kind, status), count in sorted(answers.items()):
    print(f"  {kind} {status}: {count}")
unexpected = [key for key in answers if key[1] not in (201, 401, 429, 503)]
if unexpected:
    print(f"  unexpected answers: {unexpected}")
    sys.exit(1)
PY
touch "$logs/done"
wait "$sampler"
read -r peak peak_threads <"$peak_file"
echo "core peak during the burst: $(awk -v kb="$peak" 'BEGIN {printf "%.1f", kb / 1024}') MB RSS, $peak_threads threads"
for wait in 5 10 30; do
    sleep $((wait - ${last:-0})); last=$wait
    echo "core ${wait} s after: $(rss_mb) MB RSS, $(threads) threads"
done
