#!/usr/bin/env bash
# Runs hookd's whole test suite: unit tests, the store conformance suite, the integration tests
# (including the kill -9 durability test) and the compatibility tests that drive hookd with the
# official Svix Python SDK and verify deliveries with the Standard Webhooks library.
set -euo pipefail
cd "$(dirname "$0")/.."

# The compatibility tests need these two PyPI packages; install them once if missing.
if ! python3 -c "import svix, standardwebhooks" 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check "svix==2.9.1" "standardwebhooks==1.1.0"
fi

cargo test --workspace "$@"
