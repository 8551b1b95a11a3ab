#!/usr/bin/env bash
# DNS-rebinding drill: an endpoint's host name resolves to an allowed address on the first
# lookup and to a refused one on every later lookup (TTL 0), as an attacker's DNS server would
# answer. hookd checks the addresses of every lookup before it connects, so the first message
# is delivered to the allowed address and every later attempt is recorded as refused: no
# connection ever reaches the refused address.
#
#   scripts/drills/dns-rebinding.sh
#
# Everything runs in a network and mount namespace of its own with only a loopback interface:
# /etc/resolv.conf is replaced there (only there) by one naming a DNS stub on 127.0.0.1
# (scripts/drills/dns_stub.py). The allowed address is 127.0.0.2 (delivery.allowed_subnets =
# 127.0.0.2/32), the refused one 127.0.0.3; both are served by a receiver that counts every
# connection. A neighbour tenant publishes 50 messages at 50/s to its own endpoint meanwhile;
# its accept-to-delivery p99 is printed and must stay under a second. Needs root (unshare,
# mount) and Python 3; HOOKD_BIN names the hookd binary to test (otherwise a release build).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
hookd="${HOOKD_BIN:-}"
if [ -z "$hookd" ]; then
    cargo build --release -p hookd >&2
    hookd="${CARGO_TARGET_DIR:-$root/target}/release/hookd"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

unshare --net --mount bash -s "$hookd" "$work" "$root/scripts/drills/dns_stub.py" <<'INNER'
set -euo pipefail
hookd="$1" work="$2" stub="$3"
ip link set lo up
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"$work/resolv.conf"
mount --bind "$work/resolv.conf" /etc/resolv.conf
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

python3 "$stub" 127.0.0.1 53 rebind.test 127.0.0.2 127.0.0.3 1 "$work/lookups.log" &
pids+=($!)
# One receiver per address: answers 200 and closes the connection (HTTP/1.0), so every
# delivery needs a new connection and a new lookup; logs each connection before reading it.
receiver() {
    python3 - "$1" "$2" <<'PY' &
import http.server, sys
address, log = sys.argv[1], sys.argv[2]
class Handler(http.server.BaseHTTPRequestHandler):
    def setup(self):
        super().setup()
        with open(log, "a") as f:
            f.write("connection\n")
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer((address, 8080), Handler).serve_forever()
PY
    pids+=($!)
}
touch "$work/allowed.log" "$work/refused.log" "$work/neighbour.log"
receiver 127.0.0.2 "$work/allowed.log"
receiver 127.0.0.3 "$work/refused.log"
# A neighbour tenant's receiver (allowed, reached by address): logs each message's arrival.
python3 - "$work/neighbour.log" <<'PY' &
import http.server, sys, time
log = sys.argv[1]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.end_headers()
        with open(log, "a") as f:
            f.write(f"{self.headers['webhook-id']} {time.time()}\n")
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.2", 8081), Handler).serve_forever()
PY
pids+=($!)
# Wait until the stub and both receivers listen, without touching them.
for _ in $(seq 100); do
    listening="$(ss -Hlnt; ss -Hlnu)"
    grep -q "127.0.0.2:8080" <<<"$listening" && grep -q "127.0.0.3:8080" <<<"$listening" &&
        grep -q "127.0.0.2:8081" <<<"$listening" &&
        grep -q "127.0.0.1:53 " <<<"$listening" && break
    sleep 0.1
done

HOOKD_DELIVERY__ALLOW_HTTP=true HOOKD_DELIVERY__ALLOWED_SUBNETS='["127.0.0.2/32"]' \
    HOOKD_DELIVERY__RETRY_SCHEDULE='[1,1]' \
    "$hookd" serve --listen 127.0.0.1:8071 --data-dir "$work/data" >"$work/out.txt" 2>"$work/hookd.log" &
pids+=($!)
for _ in $(seq 100); do
    grep -q "listening on" "$work/out.txt" 2>/dev/null && break
    sleep 0.1
done
token="$(grep -m1 "^hk_live_" "$work/out.txt")"
api() {
    local method="$1" path="$2"
    shift 2
    curl -sS -X "$method" "http://127.0.0.1:8071/api/v1$path" -H "Authorization: Bearer $token" \
        -H 'content-type: application/json' "$@"
}
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
fail() {
    echo "dns-rebinding drill: FAILED: $*" >&2
    exit 1
}

api POST /app/ -d '{"name": "rebinding", "uid": "rebinding"}' >/dev/null
api POST /app/rebinding/endpoint/ -d '{"url": "http://rebind.test:8080/hook"}' >"$work/endpoint.json"
grep -q '"id"' "$work/endpoint.json" || fail "endpoint not created: $(cat "$work/endpoint.json")"

# First message: the first lookup answers 127.0.0.2, which is allowed.
first="$(api POST /app/rebinding/msg/ -d '{"eventType": "a.b", "payload": {"n": 1}}' | field '["id"]')"
for _ in $(seq 100); do
    grep -q connection "$work/allowed.log" && break
    sleep 0.1
done
grep -q connection "$work/allowed.log" ||
    fail "the first message never reached 127.0.0.2: $(api GET "/app/rebinding/attempt/msg/$first/"); lookups: $(cat "$work/lookups.log")"

# A neighbour tenant publishes 50 messages at 50/s while the refused attempts happen; its
# accept-to-delivery p99 is reported, and must stay under a second.
api POST /app/ -d '{"name": "neighbour", "uid": "neighbour"}' >/dev/null
api POST /app/neighbour/endpoint/ -d '{"url": "http://127.0.0.2:8081/hook"}' >/dev/null
python3 - "$token" "$work/published.log" <<'PY' &
import json, sys, time, urllib.request
token, log = sys.argv[1], sys.argv[2]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
with open(log, "w") as f:
    for n in range(50):
        started = time.time()
        request = urllib.request.Request(
            "http://127.0.0.1:8071/api/v1/app/neighbour/msg/",
            data=json.dumps({"eventType": "a.b", "payload": {"n": n}}).encode(),
            headers={"Authorization": f"Bearer {token}", "content-type": "application/json"},
        )
        with opener.open(request) as reply:
            f.write(f"{json.load(reply)['id']} {started}\n")
        time.sleep(max(0.0, started + 0.02 - time.time()))
PY
neighbour=$!

# Second message: every later lookup answers 127.0.0.3, which is refused.
second="$(api POST /app/rebinding/msg/ -d '{"eventType": "a.b", "payload": {"n": 2}}' | field '["id"]')"
# Three attempts (the first and two retries a second apart), each recorded as refused.
for _ in $(seq 150); do
    count="$(api GET "/app/rebinding/attempt/msg/$second/" | field '["data"].__len__()')"
    [ "$count" -ge 3 ] && break
    sleep 0.1
done
api GET "/app/rebinding/attempt/msg/$second/" >"$work/attempts.json"
python3 - "$work/attempts.json" <<'PY' || fail "attempts: $(cat "$work/attempts.json")"
import json, sys
attempts = json.load(open(sys.argv[1]))["data"]
assert len(attempts) >= 3, f"{len(attempts)} attempts"
for a in attempts:
    assert a["status"] == 2 and a["responseStatusCode"] == 0, a
    assert "refused: 127.0.0.3" in a["response"], a["response"]
print(f"dns-rebinding drill: {len(attempts)} attempts of the second message, each refused: {attempts[0]['response']}", file=sys.stderr)
PY
wait "$neighbour" || fail "the neighbour could not publish"
for _ in $(seq 100); do
    [ "$(wc -l <"$work/neighbour.log")" -ge 50 ] && break
    sleep 0.1
done
python3 - "$work/published.log" "$work/neighbour.log" <<'PY' || fail "the neighbour tenant was slowed down"
import sys
published = dict(line.split() for line in open(sys.argv[1]))
arrived = {}
for line in open(sys.argv[2]):
    msg, at = line.split()
    arrived.setdefault(msg, float(at))
assert len(published) == 50 and set(published) <= set(arrived), f"{len(arrived)} of {len(published)} arrived"
latencies = sorted(arrived[m] - float(t) for m, t in published.items())
p99 = latencies[int(0.99 * (len(latencies) - 1))]
print(f"dns-rebinding drill: neighbour tenant p99 {p99 * 1000:.1f} ms over {len(latencies)} messages", file=sys.stderr)
assert p99 < 1.0, f"neighbour p99 {p99:.3f} s"
PY
status="$(api GET "/app/rebinding/attempt/msg/$first/" | field '["data"][0]["status"]')"
[ "$status" = 0 ] || fail "the first message's attempt has status $status"
lookups="$(wc -l <"$work/lookups.log")"
reached="$(grep -c connection "$work/refused.log" || true)"
echo "dns-rebinding drill: $lookups A lookups ($(grep -c 127.0.0.3 "$work/lookups.log") answered 127.0.0.3), connections to 127.0.0.2: $(grep -c connection "$work/allowed.log"), to 127.0.0.3: $reached" >&2
[ "$reached" = 0 ] || fail "a connection reached the refused address 127.0.0.3"
if grep -q "panicked" "$work/hookd.log"; then
    fail "hookd panicked: $(grep -A5 panicked "$work/hookd.log")"
fi
echo "dns-rebinding drill: passed" >&2
INNER
