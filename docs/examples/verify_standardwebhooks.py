from typing import Mapping

from standardwebhooks import Webhook, WebhookVerificationError

from verify_stdlib import ReplayGuard  # noqa: F401 (the same replay check, for callers)


def verify_webhook(payload: bytes, headers: Mapping[str, str], secret: str) -> bool:
    """True when `payload` (the raw body) was signed by hookd with `secret` ("whsec_…"; the
    prefix is handled) and the timestamp is within ±5 minutes of this machine's clock."""
    try:
        Webhook(secret).verify(payload, dict(headers))
    except WebhookVerificationError:
        return False
    return True
