#!/usr/bin/env bash
# Bad-input drill: schemathesis (PyPI) generates requests for every operation of hookd's API
# description, served at /api/v1/openapi.json, including stateful sequences that follow the
# description's links (create an application, then use its id…). It fails on any 5xx and on any
# answer that breaks the description (status code, content type, headers, body schema).
# Logout and token revocation are left out: they revoke the very token the run uses (their own
# tests are in the API suite). One worker: schemathesis' generator is not safe in threads on
# every Python.
#
#   scripts/drills/schemathesis.sh [MAX_EXAMPLES]     # default 25 per operation and phase
#
# hookd and schemathesis run together in a network namespace of their own that has only a
# loopback interface: endpoints the generator invents can never be reached, and no request or
# DNS query leaves the machine. Needs root (unshare) and installs schemathesis when missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
max_examples="${1:-25}"

if ! command -v st >/dev/null || ! python3 -c "import schemathesis" 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check "schemathesis==4.32.5"
fi
# HOOKD_BIN names a hookd binary to test (scripts/test.sh passes the one its tests built);
# otherwise a release build.
hookd="${HOOKD_BIN:-}"
if [ -z "$hookd" ]; then
    cargo build --release -p hookd -p hookd-bench >&2
    hookd="${CARGO_TARGET_DIR:-$root/target}/release/hookd"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Inside the namespace: loopback up, hookd on a fresh data dir, then schemathesis.
unshare --net bash -s "$hookd" "$work" "$max_examples" <<'INNER'
set -euo pipefail
hookd="$1" work="$2" max_examples="$3"
ip link set lo up
HOOKD_API__RATE_LIMIT_PER_SEC=0 "$hookd" serve --listen 127.0.0.1:8071 --data-dir "$work/data" \
    >"$work/out.txt" 2>"$work/hookd.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    grep -q "listening on" "$work/out.txt" 2>/dev/null && break
    sleep 0.1
done
token="$(grep -m1 "^hk_live_" "$work/out.txt")"
echo "schemathesis drill: hookd is up, token ${token:0:12}…" >&2
st run "http://127.0.0.1:8071/api/v1/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "$max_examples" \
    --exclude-operation-id v1.authentication.logout \
    --exclude-operation-id v1.authentication.revoke-token \
    --workers 1 \
    --seed 1 \
    --no-color
status=$?
if grep -q "panicked" "$work/hookd.log"; then
    echo "schemathesis drill: hookd panicked:" >&2
    grep -A5 "panicked" "$work/hookd.log" >&2
    exit 1
fi
exit $status
INNER
