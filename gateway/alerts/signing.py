"""The signature of a webhook delivery, pure: no I/O, no clock.

The header reads `t=<unix seconds>,v1=<hex>`, where the hex is HMAC-SHA256 keyed
with the secret over `<t>.` followed by the body's bytes. The timestamp is signed
with the body so that a captured delivery cannot be replayed once it is older than
the receiver's tolerance.
"""

from __future__ import annotations

import hashlib
import hmac
import re

SIGNATURE_HEADER = "x-gateway-signature"

# Exactly what sign() writes: a bounded decimal timestamp and a SHA-256 hex digest.
_HEADER = re.compile(r"t=([0-9]{1,15}),v1=([0-9a-f]{64})")


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, *, now: int, tolerance: int = 300) -> bool:
    """Whether `header` signs `body` with `secret` at a time within `tolerance`
    seconds of `now`. Any header that sign() could not have written is False."""
    match = _HEADER.fullmatch(header)
    if match is None:
        return False
    timestamp = int(match[1])
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(match[2], _digest(secret, timestamp, body))
