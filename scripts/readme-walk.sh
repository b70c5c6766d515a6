#!/usr/bin/env bash
# Runs the walk-throughs (docs/api.md's "Accounts and sessions", then README.md's "Book a
# cleaning": the ```sh blocks as they are written) against a gateway, and fails when any
# call answered 5xx or did not connect, or when the booking did not go all the way to
# completed and reviewed.
#   scripts/readme-walk.sh http://127.0.0.1:8080
# Needs curl and jq. The walk-throughs' calls name localhost:8080; they are pointed at BASE_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
base="${1:?usage: scripts/readme-walk.sh BASE_URL}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 - "$base" > "$work/walk.sh" <<'PY'
import re, sys
base = sys.argv[1]
blocks = []
for path, heading in (("docs/api.md", "## Accounts and sessions"), ("README.md", "## Book a cleaning")):
    text = open(path, encoding="utf-8").read()
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    blocks.append(re.search(r"```sh\n(.*?)```", section, re.S).group(1))
print("\n".join(blocks).replace("localhost:8080", base))
PY

# Every call's status goes to codes (curl's %{stderr} write-out), its output where the
# walk-through sends it.
codes="$work/codes"
{
    printf 'curl() { command curl --write-out %q "$@" 2>>%q; }\n' '%{stderr}%{http_code} %{url_effective}\n' "$codes"
    printf 'set -u\n'
    cat "$work/walk.sh"
} > "$work/run.sh"
if ! bash "$work/run.sh" > "$work/out" 2>&1; then
    cat "$work/out"
    echo "readme-walk: the walk-through stopped" >&2
    exit 1
fi
cat "$work/out"

failed=$(grep -E '^(5[0-9][0-9]|000) ' "$codes" || true)
if [[ -n "$failed" ]]; then
    echo "readme-walk: calls failed:" >&2
    echo "$failed" >&2
    exit 1
fi
for expected in '"status": "completed"' '"payment_status": "captured"' '"outcome": "succeeded"' '"model_version"'; do
    grep -qF "$expected" "$work/out" || { echo "readme-walk: no $expected in the output" >&2; exit 1; }
done
echo "readme-walk: $(wc -l < "$codes") calls against $base, none failed"
