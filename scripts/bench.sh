#!/usr/bin/env bash
# End-to-end benchmark of hookd: builds hookd and hookd-bench in release mode, then runs the
# standard scenarios and prints one JSON line per run on stdout (build output goes to stderr).
#
#   scripts/bench.sh              # (a) throughput, (b) latency at an offered 500 msgs/s
#   scripts/bench.sh ARGS...      # one custom run; ARGS go to hookd-bench, e.g.
#                                 #   scripts/bench.sh --messages 2000 --concurrency 8 --endpoints 4
#                                 #   scripts/bench.sh --database postgres://… --nodes 2
#
# With HOOKD_BENCH_POSTGRES_URL=postgres://… set, the standard scenarios also run on PostgreSQL:
# (a) and (b) with one node, then (a) with two nodes sharing the database. Each run uses a fresh
# schema that it drops afterwards; psql must be on the PATH.
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

# (a) Throughput: as fast as 64 publishers can go.
throughput=(--messages 20000 --concurrency 64)
# (b) Latency at a steady offered load well below saturation.
latency=(--messages 5000 --concurrency 32 --rate 500)

"${bench[@]}" "${throughput[@]}"
"${bench[@]}" "${latency[@]}"

if [[ -n "${HOOKD_BENCH_POSTGRES_URL:-}" ]]; then
    pg=(--database "$HOOKD_BENCH_POSTGRES_URL")
    "${bench[@]}" "${pg[@]}" "${throughput[@]}"
    "${bench[@]}" "${pg[@]}" "${latency[@]}"
    "${bench[@]}" "${pg[@]}" --nodes 2 "${throughput[@]}"
fi
