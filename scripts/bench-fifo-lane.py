"""One FIFO lane's throughput against a receiver of fixed latency, on loopback only.

    python3 scripts/bench-fifo-lane.py target/release/hookd [LATENCY_SECONDS]   # default 0.02

Starts `hookd serve` on a fresh data directory (port 8093) and a receiver that holds the lane's
first request until the backlog is published, then answers every request after LATENCY. For
batchSize 1, 10 and 100 it prints how fast one lane (no ordering key) drains its backlog, beside
batchSize / latency, the bound one request in flight at a time sets.
"""
import json, os, subprocess, sys, tempfile, threading, time, urllib.request
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler

HOOKD = sys.argv[1]
LATENCY = float(sys.argv[2]) if len(sys.argv) > 2 else 0.02
received = []
lock = threading.Lock()
gate = threading.Event()

class H(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        gate.wait()
        time.sleep(LATENCY)
        with lock:
            received.extend(i["id"] for i in json.loads(body))
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass

srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
recv_url = f"http://127.0.0.1:{srv.server_port}/fifo"
data = tempfile.mkdtemp()
env = dict(os.environ, HOOKD_API__RATE_LIMIT_PER_SEC="0", HOOKD_DELIVERY__ALLOW_HTTP="true",
           HOOKD_DELIVERY__ALLOWED_SUBNETS='["127.0.0.0/8"]')
p = subprocess.Popen([HOOKD, "serve", "--listen", "127.0.0.1:8093", "--data-dir", data], env=env,
                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
token = None
for line in p.stdout:
    if line.startswith("hk_live_"): token = line.strip()
    if "listening" in line and token: break
def call(method, path, body=None):
    req = urllib.request.Request("http://127.0.0.1:8093/api/v1" + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "content-type": "application/json"})
    with urllib.request.urlopen(req) as r: return json.loads(r.read() or b"null")
call("POST", "/app", {"name": "bench", "uid": "bench"})
results = []
for batch in (1, 10, 100):
    uid = f"lane-{batch}"
    call("POST", "/app/bench/destination", {"type": "fifoEndpoint", "uid": uid, "batchSize": batch,
         "eventTypes": [f"b{batch}"] if False else None, "config": {"url": recv_url}})
    n = 200 if batch == 1 else 2000
    with lock: received.clear()
    # publish all first (the lane backlog), then time the drain of the one lane
    gate.clear()  # the lane's first request waits: the rest queue up behind it
    for i in range(n):
        call("POST", "/app/bench/msg", {"eventType": "bench.tick", "payload": {"i": i}})
    t0 = time.time()
    gate.set()
    while True:
        with lock:
            got = len(received)
        if got >= n: break
        time.sleep(0.01)
    took = time.time() - t0
    results.append((batch, n, took, n / took))
    call("DELETE", f"/app/bench/destination/{uid}")
p.terminate()
print(f"receiver latency {LATENCY*1000:.0f} ms")
for batch, n, took, rate in results:
    print(f"batchSize {batch:>3}: {n} messages drained in {took:.2f} s = {rate:,.0f} msgs/s (batchSize / latency = {batch/LATENCY:,.0f})")
