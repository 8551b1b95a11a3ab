import json, threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from datetime import datetime, timezone
from svix.api import Svix, SvixOptions
from svix.api import (DestinationListOptions, DestinationCreateOptions, DestinationRotateSecretOptions,
    MessagePollerPollOptions, MessagePollerConsumerPollOptions, MessagePollerConsumerSeekOptions)
from svix.models import *

DEST_FIFO = {"id":"dest_1","status":"enabled","currentIterator":"it0","createdAt":"2024-01-01T00:00:00Z",
  "updatedAt":"2024-01-01T00:00:00Z","batchSize":100,"maxWaitSecs":10,"metadata":{},"type":"fifoEndpoint",
  "config":{"url":"https://x","headers":{"headers":{},"sensitive":[]}}}
POLL = {"data":[{"eventType":"a.b","payload":{"k":1},"id":"msg_1","timestamp":"2024-01-01T00:00:00Z"}],"iterator":"it1","done":True}
CANNED = {}
LOG = []
class H(BaseHTTPRequestHandler):
    def _h(self):
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n).decode() if n else None
        LOG.append((self.command, self.path, {k.lower():v for k,v in self.headers.items() if k.lower() in ("idempotency-key","content-type")}, body))
        p = self.path.split("?")[0]
        if "/poller/" in p and p.endswith("/seek"): resp = {"iterator":"it_seek"}
        elif "/poller/" in p: resp = POLL
        elif p.endswith("/secret/rotate"): resp = {"key":"whsec_abc"}
        elif p.endswith("/transformation"): resp = {"enabled":True,"code":"x"} if self.command=="GET" else {}
        elif p.endswith("/destination") and self.command=="GET": resp = {"data":[DEST_FIFO],"iterator":None,"done":True}
        else: resp = DEST_FIFO
        status = 204 if self.command=="DELETE" else (201 if self.command=="POST" else 200)
        self.send_response(status); self.send_header("content-type","application/json"); self.end_headers()
        if status != 204: self.wfile.write(json.dumps(resp).encode())
    do_GET=do_POST=do_PUT=do_PATCH=do_DELETE=_h
    def log_message(self,*a): pass
srv = HTTPServer(("127.0.0.1",0),H); threading.Thread(target=srv.serve_forever,daemon=True).start()
svix = Svix("testsk_abc", SvixOptions(server_url=f"http://127.0.0.1:{srv.server_port}"))
def run(label, f):
    LOG.clear()
    try: r = f(); out = repr(r)[:300]
    except Exception as e: out = "EXC " + repr(e)[:300]
    for m,p,h,b in LOG: print(f"--- {label}\n{m} {p}\n headers={h}\n body={b}")
    print(" ->", out)
A="app_1"; D="dest_1"
run("list", lambda: svix.destination.list(A, DestinationListOptions(limit=10, iterator="it", order=Ordering.ASCENDING)))
run("create fifo", lambda: svix.destination.create(A, DestinationIn(type="fifoEndpoint", config=FifoEndpointConfigIn(url="https://example.com/hook", headers={"X-A":"1"}, key="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), uid="my-dest", batch_size=50, max_wait_secs=5, event_types=["user.created"], channels=["c1"], metadata={"k":"v"}, status=DestinationStatusIn.ENABLED), DestinationCreateOptions(idempotency_key="idem-1")))
run("create rabbit", lambda: svix.destination.create(A, DestinationIn(type="rabbitMq", config=RabbitMqConfigIn(uri="amqp://u:p@h/%2F", routing_key="rk", mandatory=True))))
run("create rabbit dict cfg", lambda: svix.destination.create(A, DestinationIn(type="rabbitMq", config={"uri":"amqp://h/%2F","routing_key":"rk"})))
run("create polling", lambda: svix.destination.create(A, DestinationIn(type="pollingEndpoint", config={})))
run("create polling no cfg", lambda: svix.destination.create(A, DestinationIn(type="pollingEndpoint")))
run("create postgres", lambda: svix.destination.create(A, DestinationIn(type="postgres", config=PostgresConfigIn(url="postgres://u@h/db", password="pw", table_name="public.events"))))
run("create sqs", lambda: svix.destination.create(A, DestinationIn(type="sqs", config=SqsConfigIn(queue_url="https://sqs/q", region="us-east-1", access_key_id="AK", secret_access_key="SK"))))
run("get", lambda: svix.destination.get(A, D))
run("upsert", lambda: svix.destination.upsert(A, D, DestinationIn(type="fifoEndpoint", config=FifoEndpointConfigIn(url="https://e"))))
run("patch", lambda: svix.destination.patch(A, D, DestinationPatch(type="fifoEndpoint", status=DestinationStatusIn.DISABLED)))
run("patch rabbit", lambda: svix.destination.patch(A, D, DestinationPatch(type="rabbitMq", config=RabbitMqConfigPatch(routing_key="rk2"))))
run("delete", lambda: svix.destination.delete(A, D))
run("rotate", lambda: svix.destination.rotate_secret(A, D, EndpointSecretRotateIn(grace_period_seconds=60)))
run("rotate idem", lambda: svix.destination.rotate_secret(A, D, EndpointSecretRotateIn(), DestinationRotateSecretOptions(idempotency_key="k2")))
run("tr get", lambda: svix.destination.transformation.get(A, D))
run("tr patch", lambda: svix.destination.transformation.patch(A, D, DestinationTransformIn(code="function handler(w){return w}")))
run("poll", lambda: svix.message.poller.poll(A, "sink_1", MessagePollerPollOptions(limit=5, iterator="it", event_type="a.b", channel="c", after=datetime(2024,1,2,3,4,5,tzinfo=timezone.utc))))
run("poll naive after", lambda: svix.message.poller.poll(A, "sink_1", MessagePollerPollOptions(after=datetime(2024,1,2,3,4,5))))
run("consumer_poll", lambda: svix.message.poller.consumer_poll(A, "sink_1", "cons_1", MessagePollerConsumerPollOptions(limit=5, iterator="it")))
run("consumer_seek", lambda: svix.message.poller.consumer_seek(A, "sink_1", "cons_1", PollingEndpointConsumerSeekIn(after=datetime(2024,1,2,3,4,5,tzinfo=timezone.utc))))
run("consumer_seek naive", lambda: svix.message.poller.consumer_seek(A, "sink_1", "cons_1", PollingEndpointConsumerSeekIn(after=datetime(2024,1,2,3,4,5)), MessagePollerConsumerSeekOptions(idempotency_key="s1")))
