"""The webhook signature: HMAC-SHA256 over ``<timestamp>.<body>`` with the server's secret.

Headers sent with every webhook delivery:

    X-Usagemeter-Timestamp   Unix seconds when this attempt was signed
    X-Usagemeter-Signature   v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>
    Idempotency-Key          the alert id: the same for every attempt and every re-send

A receiver checks the signature over the exact bytes it got and refuses an old timestamp (``verify``),
so a captured request cannot be replayed later; it keeps the alert ids it has seen to drop repeats.
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Usagemeter-Timestamp"
SIGNATURE_HEADER = "X-Usagemeter-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def verify(
    secret: str, body: bytes, timestamp: str, signature: str, *, tolerance_s: int = 300, now: float | None = None
) -> bool:
    """Whether ``signature`` is ours for ``body`` at ``timestamp``, signed at most ``tolerance_s`` ago."""
    try:
        signed_at = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - signed_at) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, signed_at, body), signature)
