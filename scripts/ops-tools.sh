#!/usr/bin/env bash
# The tools `make check` and `make ops-check` need beyond pip, installed when missing (as
# root, or through sudo):
#   - Prometheus and Alertmanager, Debian's prometheus and prometheus-alertmanager
#     (prometheus, promtool, prometheus-alertmanager, amtool). Where the packages start
#     their daemons (systemd), they are stopped and disabled: Alertmanager's default port
#     is the scheduler's metrics port, 9093, and the checks run their own.
#   - KEDA's resource schemas from npm (tests/deploy/node/package.json, pinned), into
#     $DEPLOY_NODE_TOOLS (/var/tmp/spruce-deploy-node), where tests/deploy looks for them.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root=()
[[ "$(id -u)" == 0 ]] || as_root=(sudo)
apt_install() {
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
        || { "${as_root[@]}" apt-get update -qq && "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
}

tools="${DEPLOY_NODE_TOOLS:-/var/tmp/spruce-deploy-node}"
if ! cmp -s tests/deploy/node/package.json "$tools/package.json" || [[ ! -d "$tools/node_modules" ]]; then
    command -v npm >/dev/null || apt_install nodejs npm
    mkdir -p "$tools"
    cp tests/deploy/node/package.json "$tools/package.json"
    (cd "$tools" && npm install --no-audit --no-fund --loglevel=error)
fi
cp tests/deploy/node/keda-validate.mjs "$tools/"

missing=()
for program in prometheus promtool prometheus-alertmanager amtool; do
    command -v "$program" >/dev/null || missing+=("$program")
done
((${#missing[@]})) || exit 0
echo "ops-tools: installing prometheus and prometheus-alertmanager (for ${missing[*]})"
apt_install prometheus prometheus-alertmanager
if [[ -d /run/systemd/system ]]; then
    "${as_root[@]}" systemctl disable --now prometheus prometheus-alertmanager >/dev/null 2>&1 || true
fi
