"""Webhook signatures: HMAC-SHA256 over `<timestamp>.<exact body>` with the subscription's secret.

Header `X-Sellthrough-Signature: t=<unix seconds>,v1=<hex digest>`. The timestamp is inside what is signed, so a
receiver that refuses timestamps older than a few minutes refuses a replayed request; `X-Sellthrough-Delivery`
(the idempotency key, the same on every retry) lets it drop a delivery it has already processed."""

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-Sellthrough-Signature"
DELIVERY_HEADER = "X-Sellthrough-Delivery"
DEFAULT_TOLERANCE_SECONDS = 300


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return mac.hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(
    secret: str, header: str, body: bytes, now: float, tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS
) -> bool:
    """What a receiver does: the header parsed, the timestamp fresh, the digest equal (compared in constant time)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_seconds:
        return False
    return hmac.compare_digest(parts.get("v1", ""), signature(secret, timestamp, body))
