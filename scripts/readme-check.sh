#!/usr/bin/env bash
# Runs the README as a newcomer would: the set-up's serve command as written (in the background,
# on a fresh ./hookd-data), the quickstart's receiver and curl lines verbatim with the sandbox
# token that first start printed, and checks that both events arrived with valid signatures.
# Then stops hookd with SIGTERM and expects a clean exit. The README's test command is left to
# the caller (`.ci/run` runs it as the suite). Uses 127.0.0.1:8071 and :3000, as the README does.
set -euo pipefail
cd "$(dirname "$0")/.."

# The body of the N-th ```sh block after the heading $1 (N from 1).
block() {
    awk -v heading="$1" -v want="$2" '
        $0 == heading { inside_section = 1; next }
        inside_section && /^## / { exit }
        inside_section && /^```sh/ { n++; if (n == want) { grab = 1 }; next }
        grab && /^```/ { exit }
        grab { print }
    ' README.md
}

setup="$(block '## Set-up: two commands' 1)"
serve_cmd="$(sed -n 1p <<<"$setup" | sed 's/[[:space:]]*#.*$//')"
receive_cmd="$(block '## Five-minute quickstart' 1)"
walkthrough="$(block '## Five-minute quickstart' 2)"
[ -n "$serve_cmd" ] && [ -n "$receive_cmd" ] && [ -n "$walkthrough" ] || {
    echo "readme-check: cannot find the set-up or quickstart blocks in README.md" >&2
    exit 1
}

log="$(mktemp -d)"
rm -rf ./hookd-data
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        pkill -TERM -P "$pid" 2>/dev/null || true
        kill -TERM "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

echo "readme-check: $serve_cmd"
bash -c "$serve_cmd" >"$log/serve.out" 2>"$log/serve.err" &
serve_pid=$!
pids+=("$serve_pid")
# The release build comes first on a fresh machine: allow it time.
for _ in $(seq 1 1800); do
    if curl -sf http://127.0.0.1:8071/api/v1/health >/dev/null; then break; fi
    if ! kill -0 "$serve_pid" 2>/dev/null; then
        echo "readme-check: serve exited early" >&2
        cat "$log/serve.out" "$log/serve.err" >&2
        exit 1
    fi
    sleep 1
done
curl -sf http://127.0.0.1:8071/api/v1/health >/dev/null || { echo "readme-check: serve never became healthy" >&2; exit 1; }
test_token="$(awk '/^hookd: test environment/ { getline; print; exit }' "$log/serve.out")"
live_token="$(awk '/^hookd: live environment/ { getline; print; exit }' "$log/serve.out")"
[[ "$test_token" == hk_test_* && "$live_token" == hk_live_* ]] || {
    echo "readme-check: first start did not print both admin tokens" >&2
    cat "$log/serve.out" >&2
    exit 1
}

echo "readme-check: $receive_cmd"
bash -c "$receive_cmd" >"$log/receive.out" 2>"$log/receive.err" &
pids+=("$!")
for _ in $(seq 1 120); do
    if curl -s -o /dev/null http://127.0.0.1:3000/; then break; fi
    sleep 1
done

echo "readme-check: the quickstart walk-through"
# Verbatim, but for the placeholder token, which the reader pastes from first start.
script="${walkthrough//hk_test_…/$test_token}"
bash -e -c "$script" >"$log/walk.out" 2>"$log/walk.err" || {
    echo "readme-check: the quickstart failed" >&2
    cat "$log/walk.out" "$log/walk.err" >&2
    exit 1
}
for expect in '"uid":"ws_123"' '"key":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"' '"eventId":"evt_123456"'; do
    grep -qF "$expect" "$log/walk.out" || {
        echo "readme-check: the quickstart's answers lack $expect" >&2
        cat "$log/walk.out" "$log/walk.err" >&2
        exit 1
    }
done

# Both events (the published one and the triggered one) reach the receiver, signed correctly.
for _ in $(seq 1 60); do
    [ "$(grep -c '^signature: valid' "$log/receive.out" || true)" -ge 2 ] && break
    sleep 1
done
valid="$(grep -c '^signature: valid' "$log/receive.out" || true)"
[ "$valid" -ge 2 ] || {
    echo "readme-check: expected 2 deliveries with valid signatures, saw $valid" >&2
    cat "$log/receive.out" >&2
    exit 1
}
attempts="$(curl -s http://127.0.0.1:8071/api/v1/app/ws_123/attempt/msg/evt_123456 -H "Authorization: Bearer $test_token")"
grep -qF '"responseStatusCode":200' <<<"$attempts" || {
    echo "readme-check: the attempt log lacks the successful attempt: $attempts" >&2
    exit 1
}

# A clean stop: SIGTERM to hookd itself, exit status 0 within the grace period. (`cargo run`
# replaces itself with hookd on Unix; should a shell or cargo stay in between, signal its child.)
hookd_pid="$(pgrep -P "$serve_pid" | head -1 || true)"
kill -TERM "${hookd_pid:-$serve_pid}"
for _ in $(seq 1 45); do
    kill -0 "$serve_pid" 2>/dev/null || break
    sleep 1
done
if kill -0 "$serve_pid" 2>/dev/null; then
    echo "readme-check: hookd did not stop within 45 s of SIGTERM" >&2
    exit 1
fi
status=0
wait "$serve_pid" || status=$?
[ "$status" -eq 0 ] || { echo "readme-check: serve exited with $status" >&2; cat "$log/serve.err" >&2; exit 1; }
rm -rf ./hookd-data "$log"
echo "readme-check: the README's set-up and quickstart work as written"
