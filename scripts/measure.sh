# Sourced by scripts/bench.sh and scripts/cost.sh: what both measure with.

# They build release binaries first, which needs protoc.
./scripts/build-tools.sh

# CPU ticks (1/100 s) spent so far by each command name, summed over its living processes
# and the children they have waited for (the scheduler's archive writers, PostgreSQL's
# backends that ended): "name ticks". comm is cut to 15 characters (spruce-scheduler shows
# as spruce-schedule).
process_cpu() {
    cat /proc/[0-9]*/stat 2>/dev/null | awk '{
        # The name is in parentheses and may hold spaces: the fields follow the last ") ".
        from = index($0, "("); to = index($0, ") ")
        split(substr($0, to + 2), field, " ")
        ticks[substr($0, from + 1, to - from - 1)] += field[12] + field[13] + field[14] + field[15]
    } END { for (name in ticks) print name, ticks[name] }'
}

# Waits up to 30 s for the URL $1 to answer 2xx; else says so (naming $logs) and exits.
wait_ready() {
    for _ in $(seq 1 300); do
        curl -fsS "$1" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "$(basename "$0"): $1 never became ready (logs in $logs)" >&2
    exit 1
}
