import threading, json
from http.server import BaseHTTPRequestHandler, HTTPServer
from svix.api import Svix, SvixOptions
from svix.models import *
MODE = {}
class H(BaseHTTPRequestHandler):
    def _h(self):
        n=int(self.headers.get("content-length") or 0); self.rfile.read(n)
        st, body = MODE["r"]
        self.send_response(st); self.send_header("content-type","application/json"); self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)
    do_GET=do_POST=do_PUT=do_PATCH=do_DELETE=_h
    def log_message(self,*a): pass
srv=HTTPServer(("127.0.0.1",0),H); threading.Thread(target=srv.serve_forever,daemon=True).start()
s=Svix("testsk_x", SvixOptions(server_url=f"http://127.0.0.1:{srv.server_port}", retry_schedule=[]))
def t(label, r, f):
    MODE["r"]=r
    try: print("OK  ", label, repr(f())[:80])
    except Exception as e: print("FAIL", label, type(e).__name__, str(e)[:120])
t("tr patch 204 empty", (204,b""), lambda: s.destination.transformation.patch("a","d",DestinationTransformIn(code=None)))
t("tr patch 200 {}", (200,b"{}"), lambda: s.destination.transformation.patch("a","d",DestinationTransformIn()))
t("rotate 204 empty", (204,b""), lambda: s.destination.rotate_secret("a","d",EndpointSecretRotateIn()))
t("delete 200 {}", (200,b"{}"), lambda: s.destination.delete("a","d"))
t("delete 204", (204,b""), lambda: s.destination.delete("a","d"))
t("get 404 json", (404,b'{"code":"not_found","detail":"Entity not found"}'), lambda: s.destination.get("a","d"))
t("get 404 empty", (404,b''), lambda: s.destination.get("a","d"))
t("create 422", (422,b'{"detail":[{"loc":["body","type"],"msg":"bad","type":"value_error"}]}'), lambda: s.destination.create("a",DestinationIn(type="pollingEndpoint")))
