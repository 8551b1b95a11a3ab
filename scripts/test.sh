#!/usr/bin/env bash
# Runs hookd's whole test suite: unit tests, the store conformance suite, the integration tests
# (including the kill -9 durability test), the compatibility tests that drive hookd with the
# official Svix Python SDK and verify deliveries with the Standard Webhooks library, and the
# browser tests of the dashboard and portal in headless Chromium.
# Set HOOKD_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test) to run the
# PostgreSQL backend's suites, and the PostgreSQL destination tests, too; each test uses a
# schema of its own and drops it. The RabbitMQ destination tests use a broker on
# 127.0.0.1:5672, started (or installed from Debian's packages) when it is down.
set -euo pipefail
cd "$(dirname "$0")/.."

# The compatibility tests need these two PyPI packages; install them once if missing.
if ! python3 -c "import svix, standardwebhooks" 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check "svix==2.9.1" "standardwebhooks==1.1.0"
fi

# The browser tests drive headless Chromium through chromedriver (Debian's packages).
if ! command -v chromedriver >/dev/null || ! [ -x "${HOOKD_CHROMIUM:-/usr/bin/chromium}" ]; then
    as_root=""
    [ "$(id -u)" = 0 ] || as_root="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $as_root apt-get install -y -q chromium chromium-driver >/dev/null ||
        { $as_root apt-get update -q >/dev/null && $as_root apt-get install -y -q chromium chromium-driver >/dev/null; }
fi

# The integration guide's examples run in their own languages: Go (Debian's golang-go) and
# TypeScript (the compiler and Node's types from npm, kept in the build folder).
if ! command -v go >/dev/null; then
    as_root=""
    [ "$(id -u)" = 0 ] || as_root="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $as_root apt-get install -y -q golang-go >/dev/null ||
        { $as_root apt-get update -q >/dev/null && $as_root apt-get install -y -q golang-go >/dev/null; }
fi
guide_node="$(mkdir -p "${CARGO_TARGET_DIR:-target}/guide-node" && cd "${CARGO_TARGET_DIR:-target}/guide-node" && pwd)"
if ! [ -x "$guide_node/node_modules/.bin/tsc" ]; then
    npm install --prefix "$guide_node" --no-audit --no-fund --silent typescript@5 @types/node@20 >/dev/null
fi
export HOOKD_TSC="$guide_node/node_modules/.bin/tsc" HOOKD_NODE_TYPES="$guide_node/node_modules/@types"

# The RabbitMQ destinations are tested against a broker on 127.0.0.1:5672.
bash scripts/ensure-rabbitmq.sh

# As root, the drills that need it run too: the disk-full drill mounts a small tmpfs, and the
# schemathesis and DNS-rebinding drills run in network namespaces of their own (scripts/drills/).
as_root=false
[ "$(id -u)" = 0 ] && as_root=true
if $as_root; then
    export HOOKD_TEST_FAULTS=1
else
    echo "test.sh: not root, so the disk-full, schemathesis and DNS-rebinding drills are not run" >&2
fi

cargo test --workspace "$@"

if $as_root; then
    HOOKD_BIN="${CARGO_TARGET_DIR:-target}/debug/hookd" bash scripts/drills/schemathesis.sh 25
    HOOKD_BIN="${CARGO_TARGET_DIR:-target}/debug/hookd" bash scripts/drills/dns-rebinding.sh
fi

# With a PostgreSQL server named, the API suite runs a second time on it (the store
# conformance suite and the several-node test already used it above).
if [ -n "${HOOKD_TEST_POSTGRES_URL:-}" ]; then
    HOOKD_TEST_BACKEND=postgres cargo test -p hookd --test api "$@"
    # Last and one at a time: these stop, restart and cut off the PostgreSQL server under load.
    HOOKD_TEST_PG_OUTAGE=1 cargo test -p hookd --test api outage -- --test-threads=1
fi
