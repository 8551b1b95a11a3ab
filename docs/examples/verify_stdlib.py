import base64
import hashlib
import hmac
import time
from typing import Mapping, Optional

TOLERANCE_SECONDS = 5 * 60


def verify_webhook(payload: bytes, headers: Mapping[str, str], secret: str,
                   now: Optional[float] = None) -> bool:
    """True when `payload` (the raw body) was signed by hookd with `secret` ("whsec_…") and the
    timestamp is within ±5 minutes. `headers` maps lower-case header names to values."""
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signature = headers.get("webhook-signature", "")
    if not (msg_id and timestamp and signature):
        return False

    # 1. Timestamp: plain digits, within the tolerance in either direction.
    now = time.time() if now is None else now
    if not timestamp.isdigit() or abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        return False

    # 2. Expected tag: HMAC-SHA256 over "{id}.{timestamp}.{body}" with the decoded secret.
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + payload
    expected = hmac.new(key, signed, hashlib.sha256).digest()

    # 3. Any "v1" entry of the space-separated list may match; compare in constant time.
    for entry in signature.split(" "):
        version, _, tag = entry.partition(",")
        if version != "v1":
            continue
        try:
            received = base64.b64decode(tag, validate=True)
        except ValueError:
            continue
        if hmac.compare_digest(received, expected):
            return True
    return False


class ReplayGuard:
    """Remembers the webhook-id values already processed, so a replayed (or redelivered) request is
    recognised. In production keep them in your database, in the same transaction as the work;
    this in-memory version keeps each id for a day."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def first_time(self, msg_id: str, now: Optional[float] = None) -> bool:
        now = time.time() if now is None else now
        self._seen = {i: at for i, at in self._seen.items() if now - at <= 24 * 60 * 60}
        if msg_id in self._seen:
            return False
        self._seen[msg_id] = now
        return True
