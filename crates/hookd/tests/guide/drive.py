"""Runs a Python verification example of the integration guide over the cases on stdin (a
JSON list of {secret, headers, body}); prints "accepted" or "rejected" per case."""
import importlib.util
import json
import sys

spec = importlib.util.spec_from_file_location("example", sys.argv[1])
example = importlib.util.module_from_spec(spec)
spec.loader.exec_module(example)
guard = example.ReplayGuard()
for case in json.load(sys.stdin):
    headers = case["headers"]
    ok = example.verify_webhook(case["body"].encode(), headers, case["secret"]) and guard.first_time(
        headers["webhook-id"]
    )
    print("accepted" if ok else "rejected")
