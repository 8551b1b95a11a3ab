import time
from typing import Mapping, Optional

from standardwebhooks import Webhook, WebhookVerificationError


def verify_webhook(payload: bytes, headers: Mapping[str, str], secret: str) -> bool:
    """True when `payload` (the raw body) was signed by hookd with `secret` ("whsec_…"; the
    prefix is handled) and the timestamp is within ±5 minutes of this machine's clock."""
    try:
        Webhook(secret).verify(payload, dict(headers))
    except WebhookVerificationError:
        return False
    return True


class ReplayGuard:
    """Remembers the webhook-id values already processed (in production: your database, in the same
    transaction as the work); this in-memory version keeps each id for a day."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def first_time(self, msg_id: str, now: Optional[float] = None) -> bool:
        now = time.time() if now is None else now
        self._seen = {i: at for i, at in self._seen.items() if now - at <= 24 * 60 * 60}
        if msg_id in self._seen:
            return False
        self._seen[msg_id] = now
        return True
