"""Runs a Python verification example of the integration guide over the cases on stdin (a
JSON list of {secret, headers, body}); prints "accepted" or "rejected" per case.

    drive.py EXAMPLE.py [FUNCTION]     # FUNCTION defaults to verify_webhook

Each verified id is then checked against the example's ReplayGuard, or the guide's own (from
verify_stdlib.py) for an example without one."""
import importlib.util
import json
import pathlib
import sys

# Examples import each other (`from verify_stdlib import ReplayGuard`), as beside each other.
sys.path.insert(0, str(pathlib.Path(sys.argv[1]).parent))
spec = importlib.util.spec_from_file_location("example", sys.argv[1])
example = importlib.util.module_from_spec(spec)
spec.loader.exec_module(example)
verify = getattr(example, sys.argv[2] if len(sys.argv) > 2 else "verify_webhook")
if hasattr(example, "ReplayGuard"):
    guard = example.ReplayGuard()
else:
    from verify_stdlib import ReplayGuard

    guard = ReplayGuard()
for case in json.load(sys.stdin):
    headers = case["headers"]
    ok = verify(case["body"].encode(), headers, case["secret"]) and guard.first_time(headers["webhook-id"])
    print("accepted" if ok else "rejected")
