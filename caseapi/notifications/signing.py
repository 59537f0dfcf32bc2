"""Webhook signatures, as Stripe does them (pure functions, no I/O).

``X-NMS-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]`` where each ``v1`` is the
HMAC-SHA256, keyed with one active secret, of ``"<t>.<raw body>"``. During a key
rotation two secrets are active and both signatures are sent; a receiver accepts
the message if any ``v1`` matches a secret it knows and ``t`` is recent.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

SIGNATURE_HEADER = "X-NMS-Signature"
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh webhook secret (256 random bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex ``v1`` signature of ``body`` sent at ``timestamp`` with ``secret``."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(active_secrets: Iterable[str], timestamp: int, body: bytes) -> str:
    """The ``X-NMS-Signature`` value: one ``v1`` per active secret, newest first."""
    parts = [f"t={timestamp}"]
    parts.extend(f"v1={signature(secret, timestamp, body)}" for secret in active_secrets)
    if len(parts) == 1:
        raise ValueError("at least one secret is needed to sign")
    return ",".join(parts)


def verify(header: str, body: bytes, secret: str, *, now: float, tolerance: float = 300.0) -> bool:
    """Whether ``header`` carries a valid signature of ``body`` by ``secret``.

    What a receiver runs; used by our tests. ``now`` is the receiver's Unix time,
    ``tolerance`` the accepted age (replay protection).
    """
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
