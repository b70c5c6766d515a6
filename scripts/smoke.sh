#!/usr/bin/env bash
# Smoke test of a deployed gateway: ready, documented, and a customer can sign up, log in and
# read their profile.   scripts/smoke.sh https://api.e2e.spruce.example
set -euo pipefail
base="${1:?usage: scripts/smoke.sh BASE_URL}"
email="smoke-$(date +%s)-$RANDOM@spruce.test"
password="smoke-test-password-$RANDOM"

curl -fsS "$base/readyz" >/dev/null
curl -fsS "$base/openapi.json" | grep -q '"openapi"'
curl -fsS -X POST "$base/v1/auth/signup" -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"$password\",\"full_name\":\"Smoke Test\",\"role\":\"customer\"}" >/dev/null
token=$(curl -fsS -X POST "$base/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"$password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
curl -fsS "$base/v1/me" -H "authorization: Bearer $token" | grep -q "$email"
echo "smoke: $base ok"
