import json
import os
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from verify_stdlib import ReplayGuard, verify_webhook

SECRET = os.environ["HOOKD_WEBHOOK_SECRET"]  # "whsec_…"
guard, guard_lock = ReplayGuard(), threading.Lock()
jobs: "queue.Queue[tuple[str, object]]" = queue.Queue()


def process_events() -> None:
    """The slow part (calling other services, sending mail) runs here, after the answer."""
    while True:
        msg_id, event = jobs.get()
        time.sleep(1)  # stands for slow work
        print(f"processed {msg_id}", flush=True)


class WebhookHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        # 1. Verify the raw bytes, before parsing anything.
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        headers = {name.lower(): value for name, value in self.headers.items()}
        if not verify_webhook(body, headers, SECRET):
            self.send_response(400)
            self.end_headers()
            self.wfile.write(b"invalid signature")
            return
        # 2. Deduplicate on webhook-id, and queue the event.
        with guard_lock:
            first = guard.first_time(headers["webhook-id"])
        if first:
            jobs.put((headers["webhook-id"], json.loads(body)))
        # 3. Answer at once, a repeat too: it was delivered.
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


threading.Thread(target=process_events, daemon=True).start()
server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "3000"))), WebhookHandler)
print(f"listening on http://127.0.0.1:{server.server_port}", flush=True)  # PORT=0: a free port
server.serve_forever()
