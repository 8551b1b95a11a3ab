"""How fast one lane of a RabbitMQ or PostgreSQL destination drains a backlog, on loopback only.

    python3 scripts/bench-sinks.py target/release/hookd [MESSAGES]   # default 5000

Needs the machine's RabbitMQ (127.0.0.1:5672, guest/guest) and PostgreSQL (127.0.0.1:5432,
user postgres, trust auth, database test, `psql` on the PATH). Starts `hookd serve` on a fresh
data directory (port 8094) with a retry schedule of one second. For each destination type and
batchSize 1, 10 and 100 it builds a backlog that the destination cannot take yet (the RabbitMQ
destination points at a closed port, the table's schema does not exist), then makes it
reachable and times the drain of the one lane: messages per second from the first delivered
message to the last.

RabbitMQ: messages go to the default exchange under a routing key no queue is bound to, with
`mandatory: false`, so the broker confirms and drops each one: the figure is hookd's publish
and confirm path, not a consumer's. PostgreSQL: rows are inserted into a fresh schema, dropped
at the end.
"""
import json, os, random, subprocess, sys, tempfile, time, urllib.request

HOOKD = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
PG = "postgres://postgres@127.0.0.1:5432/test"
data = tempfile.mkdtemp()
env = dict(os.environ, HOOKD_API__RATE_LIMIT_PER_SEC="0", HOOKD_DELIVERY__ALLOW_HTTP="true",
           HOOKD_DELIVERY__ALLOWED_SUBNETS='["127.0.0.0/8"]',
           HOOKD_DELIVERY__RETRY_SCHEDULE="[1,1,1,1,1,1,1,1,1,1,1,1]")
p = subprocess.Popen([HOOKD, "serve", "--listen", "127.0.0.1:8094", "--data-dir", data], env=env,
                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
token = None
for line in p.stdout:
    if line.startswith("hk_live_"): token = line.strip()
    if "listening" in line and token: break

def call(method, path, body=None):
    req = urllib.request.Request("http://127.0.0.1:8094/api/v1" + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "content-type": "application/json"})
    with urllib.request.urlopen(req) as r: return json.loads(r.read() or b"null")

def psql(sql):
    quiet = dict(os.environ, PGOPTIONS="-c client_min_messages=warning")
    subprocess.run(["psql", "-q", PG, "-c", sql], check=True, stdout=subprocess.DEVNULL, env=quiet)

def drain(uid, n, reachable):
    """Publishes n messages to the app `uid`, makes its destination reachable, times the drain."""
    payload = {"order": "x" * 900}
    for i in range(n):
        call("POST", f"/app/{uid}/msg", {"eventType": "bench.tick", "payload": dict(payload, i=i)})
    reachable()
    first = None
    while True:
        done = call("GET", f"/app/{uid}/endpoint/{uid}/stats")["success"]
        now = time.time()
        if done and first is None: first, first_done = now, done
        if done >= n: break
        time.sleep(0.005)
    return (n - first_done) / max(now - first, 1e-6)

results = []
schemas = []
for batch in (1, 10, 100):
    n = N // 10 if batch == 1 else N
    uid = f"mq{batch}"
    call("POST", "/app", {"name": uid, "uid": uid})
    call("POST", f"/app/{uid}/destination", {"type": "rabbitMq", "uid": uid, "batchSize": batch,
         "config": {"uri": "amqp://guest:guest@127.0.0.1:1/%2f", "routingKey": "hookd-bench-unbound", "mandatory": False}})
    fix = lambda uid=uid: call("PATCH", f"/app/{uid}/destination/{uid}",
                               {"type": "rabbitMq", "config": {"uri": "amqp://guest:guest@127.0.0.1:5672/%2f"}})
    results.append(("rabbitMq", batch, n, drain(uid, n, fix)))

    uid = f"pg{batch}"
    schema = f"hookd_bench_{random.getrandbits(48):012x}"
    schemas.append(schema)
    call("POST", "/app", {"name": uid, "uid": uid})
    call("POST", f"/app/{uid}/destination", {"type": "postgres", "uid": uid, "batchSize": batch,
         "config": {"url": PG, "tableName": f"{schema}.events"}})
    results.append(("postgres", batch, n, drain(uid, n, lambda s=schema: psql(f'CREATE SCHEMA "{s}"'))))

p.terminate(); p.wait()
for s in schemas:
    psql(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')
print("| type | batchSize | messages | msgs/s (one lane) |")
print("|---|---:|---:|---:|")
for kind, batch, n, rate in results:
    print(f"| {kind} | {batch} | {n:,} | {rate:,.0f} |")
