"""The one narrow interface from the detector to the case service.

In embedded mode the case service object is called directly; in distributed mode
the same calls travel over the bus or HTTP. Both calls are idempotent by
``dedup_key``: calling twice has the effect of calling once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

Priority = Literal["P1", "P2", "P3"]


def ntu_down_key(ntu_id: str) -> str:
    return f"ntu:{ntu_id}:down"


def ntu_degraded_key(ntu_id: str) -> str:
    return f"ntu:{ntu_id}:degraded"


@dataclass(frozen=True, slots=True)
class IncidentOpen:
    """Open (or find the open) proactive incident for an outage."""

    dedup_key: str
    priority: Priority
    ntu_id: str
    customer_id: str
    service_id: str | None
    site: str | None
    outage_start: datetime
    detected_at: datetime
    summary: str
    supersedes: str | None = None
    """Dedup key of a lower-priority open case for the same NTU (``ntu:<id>:degraded``)
    that this incident upgrades in place instead of opening a second case: the
    customer keeps one case, its priority raised and its key changed to this one."""


class CaseSink(Protocol):
    async def open_incident(self, request: IncidentOpen) -> str:
        """Return the reference of the open case for ``request.dedup_key``.

        Creates it when none is open; a solved case still in its monitoring window
        goes back to work instead (recurrence).
        """
        ...

    async def restore_incident(self, *, dedup_key: str, restored_at: datetime) -> str | None:
        """Mark the open case for ``dedup_key`` solved; return its reference, if any."""
        ...
