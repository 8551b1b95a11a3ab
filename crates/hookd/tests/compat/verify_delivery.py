"""Verifies one hookd delivery with the Standard Webhooks reference library (and the Svix
SDK's verifier). Reads {"secret", "headers", "body"} as JSON on stdin; exits 0 when valid."""

import json
import sys

from standardwebhooks.webhooks import Webhook as StandardWebhook
from svix.webhooks import Webhook as SvixWebhook

case = json.load(sys.stdin)
body = case["body"].encode("utf-8")
StandardWebhook(case["secret"]).verify(body, case["headers"])
SvixWebhook(case["secret"]).verify(body, case["headers"])
try:
    StandardWebhook(case["secret"]).verify(body + b" ", case["headers"])
except Exception:
    print("ok")
else:
    sys.exit("a tampered body was accepted")
