"""The public status of each NTU (and upstream node), as the detector reports it.

``ntu_states`` is what ``GET /v1/ntus`` and ``/v1/ntus/{id}/status`` show, what the
"never auto-close while the NTU is down" rule reads, and where RFOs find the probe
figures. The detector sends one ``NtuStatusUpdate`` per NTU whose status or figures
changed; ``save_statuses`` stores a batch with one statement per row shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.core.upsert import upsert
from caseapi.ntus.models import NtuState

_TIMESTAMPS: Final = (
    "since",
    "outage_start",
    "last_observation_at",
    "last_success_at",
    "last_reboot_at",
)
#: The latest burst's figures: kept as stored when an update has none of them.
_PROBE_FIELDS: Final = ("rtt_avg", "loss", "jitter")


@dataclass(frozen=True, slots=True, kw_only=True)
class NtuStatusUpdate:
    """One NTU's public status; ``None`` where the detector does not know a value.

    Raises ``ValueError`` when built with a naive timestamp.

    ``rtt_avg`` and ``jitter`` are seconds, ``loss`` a fraction (0..1). An update
    with ``loss`` ``None`` carries no burst (none seen since the detector started):
    the figures stored before are kept. Every other field replaces the stored one.
    """

    ntu_id: str
    status: str
    """``up``, ``suspect``, ``down``, ``recovering``, ``unreachable`` or ``unknown``."""
    since: datetime
    outage_start: datetime | None = None
    last_observation_at: datetime | None = None
    last_success_at: datetime | None = None
    rtt_avg: float | None = None
    loss: float | None = None
    jitter: float | None = None
    case_ref: str | None = None
    """The open P1 (down) case, if any."""
    degraded_case_ref: str | None = None
    """The open P2 (degraded) case, if any, and why it was opened."""
    degraded_reasons: str | None = None
    icmp_filtered: bool = False
    """SNMP answers while ICMP does not: echoes are filtered on the way."""
    wan_if_index: int | None = None
    wan_oper_status: int | None = None
    wan_admin_status: int | None = None
    in_bps: float | None = None
    out_bps: float | None = None
    error_rate: float | None = None
    sys_uptime: int | None = None
    last_reboot_at: datetime | None = None
    reboots: int = 0

    def __post_init__(self) -> None:
        for name in _TIMESTAMPS:
            value = getattr(self, name)
            if value is not None and (value.tzinfo is None or value.utcoffset() is None):
                raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")


async def save_statuses(session: AsyncSession, updates: Sequence[NtuStatusUpdate]) -> None:
    """Upsert ``updates`` in the caller's transaction (the last one per NTU wins)."""
    latest = {update.ntu_id: update for update in updates}
    # Rows with and without probe figures have different column sets; one
    # statement per shape keeps each parameter set uniform.
    shapes: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    for update in latest.values():
        # A shallow dict (``asdict`` deep-copies every value): this runs for every NTU
        # that changed in a batch, 10,000 times a cycle on a large fleet.
        with_probe = update.loss is not None
        names = _ALL_FIELDS if with_probe else _FIELDS_WITHOUT_PROBE
        shapes[with_probe].append({name: getattr(update, name) for name in names})
    for rows in shapes.values():
        # The Core table, not the ORM class: no per-row ORM bookkeeping.
        await upsert(session, NtuState.__table__, rows, ["ntu_id"])


_ALL_FIELDS: Final = tuple(f.name for f in fields(NtuStatusUpdate))
_FIELDS_WITHOUT_PROBE: Final = tuple(n for n in _ALL_FIELDS if n not in _PROBE_FIELDS)
