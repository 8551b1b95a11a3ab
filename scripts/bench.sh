#!/usr/bin/env bash
# End-to-end benchmark of hookd: builds hookd and hookd-bench in release mode, then runs the
# standard scenarios and prints one JSON line per run on stdout (build output goes to stderr).
#
#   scripts/bench.sh              # the standard matrix below (about 10 minutes)
#   scripts/bench.sh ARGS...      # one custom run; ARGS go to hookd-bench, e.g.
#                                 #   scripts/bench.sh --messages 2000 --concurrency 8 --endpoints 4
#                                 #   scripts/bench.sh --database postgres://… --nodes 2
#
# With HOOKD_BENCH_POSTGRES_URL=postgres://… set, the whole matrix runs again on PostgreSQL (one
# node), followed by the scale-out pairs: one node pinned to CPU 0, then two nodes pinned to CPU 0
# and CPU 1 (taskset), in the closed loop and with a fan-out to 10 endpoints. Each run uses a
# fresh schema that it drops afterwards; psql must be on the PATH. HOOKD_BENCH_SKIP_SQLITE=1
# runs the PostgreSQL part only.
#
# Respects CARGO_TARGET_DIR (default: <repo>/target). HOOKD_* variables reach hookd, so its
# configuration can be varied, e.g. HOOKD_STORAGE__SQLITE_SYNCHRONOUS=normal scripts/bench.sh.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Resolve a relative CARGO_TARGET_DIR against the caller's directory before changing directory,
# so cargo and this script agree on where the binaries are.
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    mkdir -p "$CARGO_TARGET_DIR"
    CARGO_TARGET_DIR="$(cd "$CARGO_TARGET_DIR" && pwd)"
    export CARGO_TARGET_DIR
fi
target="${CARGO_TARGET_DIR:-$root/target}"
cd "$root"

cargo build --release -p hookd -p hookd-bench >&2

# The harness publishes with one token far above the default per-token rate limit; measure the
# engine, not the limiter (set it explicitly to measure with a limit).
export HOOKD_API__RATE_LIMIT_PER_SEC="${HOOKD_API__RATE_LIMIT_PER_SEC:-0}"

bench=("$target/release/hookd-bench" --hookd "$target/release/hookd")

if [[ $# -gt 0 ]]; then
    "${bench[@]}" "$@"
    exit
fi

# The standard matrix (docs/performance.md). Each line is one run printing one JSON line; every
# run checks its ledger (published = delivered + failed + pending) and fails if it does not
# balance. HOOKD_BENCH_QUICK=1 runs smaller sizes (a backlog of 100,000 instead of 1,000,000).
quick="${HOOKD_BENCH_QUICK:-}"
backlog_messages=1000000
[[ -n "$quick" ]] && backlog_messages=100000
scenarios=(
    # Closed loop, one endpoint, beside the limit baseline (the same bodies posted straight to
    # the receiver by the same 64 workers) and the relay ceiling (the same publishes forwarded
    # by hookd-relay, with no storage).
    "--messages 100000 --concurrency 64 --baseline --relay-ceiling"
    # Open loop: latency from the scheduled instant at offered rates (20 s each).
    "--messages 20000 --concurrency 256 --rate 1000"
    "--messages 40000 --concurrency 256 --rate 2000"
    "--messages 100000 --concurrency 256 --rate 5000"
    "--messages 200000 --concurrency 256 --rate 10000"
    # Fan-out.
    "--messages 10000 --concurrency 64 --endpoints 10 --relay-ceiling"
    "--messages 2000 --concurrency 64 --endpoints 100 --relay-ceiling"
    "--messages 200 --concurrency 16 --endpoints 1000"
    # 10,000 endpoints across 1,000 applications.
    "--messages 20000 --concurrency 64 --apps 1000 --endpoints 10"
    # Backlog drain.
    "--messages $backlog_messages --concurrency 64 --backlog --timeout-secs 900"
)
if [[ -z "${HOOKD_BENCH_SKIP_SQLITE:-}" ]]; then
    for scenario in "${scenarios[@]}"; do
        # shellcheck disable=SC2086 # each scenario is a list of words
        "${bench[@]}" $scenario
    done
fi

if [[ -n "${HOOKD_BENCH_POSTGRES_URL:-}" ]]; then
    pg=(--database "$HOOKD_BENCH_POSTGRES_URL")
    for scenario in "${scenarios[@]}"; do
        # shellcheck disable=SC2086
        "${bench[@]}" "${pg[@]}" $scenario
    done
    # Scale-out: each node on a core of its own (PostgreSQL and the harness share both), one
    # node against two, in the closed loop (bound by the database) and with a fan-out to 10
    # endpoints (bound by the node: signing and sending).
    "${bench[@]}" "${pg[@]}" --messages 50000 --concurrency 64 --pin 0
    "${bench[@]}" "${pg[@]}" --messages 50000 --concurrency 64 --nodes 2 --pin 0 --pin 1
    "${bench[@]}" "${pg[@]}" --messages 20000 --concurrency 64 --endpoints 10 --pin 0
    "${bench[@]}" "${pg[@]}" --messages 20000 --concurrency 64 --endpoints 10 --nodes 2 --pin 0 --pin 1
fi
