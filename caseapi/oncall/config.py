"""Process-wide staff alert settings (kept free of imports: settings modules use it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: Where ack links point (``configure``: the service's public URL).
DEFAULT_PUBLIC_URL: Final = "http://127.0.0.1:8000"
ACK_PATH: Final = "/v1/alerts/ack"


@dataclass(frozen=True, slots=True)
class AlertConfig:
    """Set once at start-up by the composition root (``caseapi.oncall.service.configure``)."""

    public_url: str = DEFAULT_PUBLIC_URL
    #: Told once when an alert's chain runs out unacknowledged (the NOC's shared box,
    #: ``notifications.staff_fallback_email``); ``None``: only logged.
    fallback_email: str | None = None
    #: The same by webhook (a pager or chat; ``notifications.staff_fallback_webhook``).
    fallback_webhook: str | None = None
