"""The public status of each NTU (and upstream node), as the detector reports it.

``ntu_states`` is what ``GET /v1/ntus`` and ``/v1/ntus/{id}/status`` show, what the
"never auto-close while the NTU is down" rule reads, and where RFOs find the probe
figures. The detector sends one ``NtuStatusUpdate`` per NTU whose status or figures
changed; ``save_statuses`` stores a batch with one statement per row shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.core.upsert import upsert
from caseapi.ntus.models import NtuState

#: The latest burst's figures: kept as stored when an update has none of them.
_PROBE_FIELDS: Final = ("rtt_avg", "loss", "jitter")


@dataclass(frozen=True, slots=True, kw_only=True)
class NtuStatusUpdate:
    """One NTU's public status; ``None`` where the detector does not know a value.

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


async def save_statuses(session: AsyncSession, updates: Sequence[NtuStatusUpdate]) -> None:
    """Upsert ``updates`` in the caller's transaction (the last one per NTU wins).

    Raises:
        ValueError: A timestamp is naive.
    """
    latest = {update.ntu_id: update for update in updates}
    # Rows with and without probe figures have different column sets; one
    # statement per shape keeps each parameter set uniform.
    shapes: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    for update in latest.values():
        row = asdict(update)
        with_probe = update.loss is not None
        if not with_probe:
            for name in _PROBE_FIELDS:
                del row[name]
        shapes[with_probe].append(row)
    for rows in shapes.values():
        await upsert(session, NtuState, rows, ["ntu_id"])
