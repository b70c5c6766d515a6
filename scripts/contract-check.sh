#!/usr/bin/env bash
# The contracts' checks, run by `make check`:
#   - the gRPC and event contracts (proto/) against a base commit: `buf breaking`, file by
#     file (a field renumbered or retyped, a message or RPC removed);
#   - the REST API's document (docs/openapi.json, which a test keeps equal to what the
#     gateway serves) against the base commit's: optic's diff with its breaking-change rules;
#   - the events' AsyncAPI document (docs/asyncapi.yaml) validated by the AsyncAPI parser
#     (tests/deploy/test_contracts.py checks it against the code that publishes).
# A deliberate break is a new version beside the old (spruce.core.v2, /v2/...), never an
# edit of the released one.
#
#   scripts/contract-check.sh            base: origin/main on a branch, else the commit before
#   CONTRACT_BASE=<git ref> scripts/contract-check.sh
#
# buf comes from PyPI (buf-bin); optic and the AsyncAPI parser from npm, pinned in
# scripts/contract/package.json and installed once into $CONTRACT_TOOLS.
set -euo pipefail
cd "$(dirname "$0")/.."

tools="${CONTRACT_TOOLS:-/var/tmp/spruce-contract-tools}"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore buf-bin==1.75.0
if ! command -v npm >/dev/null; then
    [[ "$(id -u)" == 0 ]] || { echo "contract-check: needs node and npm (apt-get install nodejs npm)" >&2; exit 1; }
    apt-get install -y -q nodejs npm >/dev/null
fi
if ! cmp -s scripts/contract/package.json "$tools/package.json" || [[ ! -d "$tools/node_modules" ]]; then
    mkdir -p "$tools"
    cp scripts/contract/package.json "$tools/package.json"
    (cd "$tools" && npm install --no-audit --no-fund --loglevel=error)
fi
cp scripts/contract/asyncapi-validate.mjs "$tools/"

base="${CONTRACT_BASE:-}"
if [[ -z "$base" ]]; then
    if git rev-parse -q --verify origin/main >/dev/null \
        && [[ "$(git rev-parse origin/main)" != "$(git rev-parse HEAD)" ]]; then
        base=origin/main
    else
        base=HEAD~1
    fi
fi
git rev-parse -q --verify "$base^{commit}" >/dev/null || {
    echo "contract-check: no commit $base to compare against (a shallow clone? fetch the history)" >&2
    exit 1
}
echo "contract-check: against $base ($(git rev-parse --short "$base"))"

buf breaking proto --against ".git#ref=$(git rev-parse "$base"),subdir=proto"
echo "contract-check: proto has no breaking change"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if git cat-file -e "$base:docs/openapi.json" 2>/dev/null; then
    git show "$base:docs/openapi.json" > "$work/base-openapi.json"
    cp docs/openapi.json "$work/openapi.json"
    (cd "$work" && OPTIC_TELEMETRY_LEVEL=off "$tools/node_modules/.bin/optic" diff base-openapi.json openapi.json --check)
    echo "contract-check: the REST API has no breaking change"
else
    echo "contract-check: $base has no docs/openapi.json yet: the REST API is not compared"
fi

node "$tools/asyncapi-validate.mjs" docs/asyncapi.yaml
