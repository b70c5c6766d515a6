#!/usr/bin/env bash
# Runs the four services in the foreground with labelled logs. Ctrl-C (or any service
# stopping) stops them all, each draining gracefully on SIGTERM.
set -euo pipefail

target_dir="${CARGO_TARGET_DIR:-target}"
# debug, or release (make run PROFILE=release).
bin="$target_dir/${PROFILE:-debug}"
export SPRUCE__TELEMETRY__LOG_FORMAT="${SPRUCE__TELEMETRY__LOG_FORMAT:-pretty}"

# The curated data set, on first run only (seeding skips a database that has it).
"$bin/spruce-core" seed 2>&1 | sed -u "s/^/[seed     ] /"

pids=()
stop_all() {
    trap - INT TERM EXIT
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop_all INT TERM EXIT

for service in core search scheduler gateway; do
    label=$(printf '%-9s' "$service")
    # The process substitution keeps $! the service's own pid, so it can be signalled.
    "$bin/spruce-$service" serve > >(sed -u "s/^/[$label] /") 2>&1 &
    pids+=("$!")
done

echo "spruce: gateway on http://127.0.0.1:8080 (Ctrl-C stops everything)"
wait -n "${pids[@]}" || true
echo "spruce: a service stopped; stopping the others"
