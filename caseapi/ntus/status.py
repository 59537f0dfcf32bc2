"""The public status of each NTU (and upstream node), as the detector reports it.

``ntu_states`` is what ``GET /v1/ntus`` and ``/v1/ntus/{id}/status`` show, what the
"never auto-close while the NTU is down" rule reads, and where RFOs find the probe
figures. The detector sends one ``NtuStatusUpdate`` per NTU whose status or figures
changed; ``save_statuses`` stores a batch with one statement per row shape
(``RowUpsert``: values straight into the driver's parameters).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from operator import attrgetter
from typing import Any, Final, cast

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.core.upsert import RowUpsert
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
    with_probe: list[tuple[Any, ...]] = []
    without_probe: list[tuple[Any, ...]] = []
    for update in latest.values():
        # One C call per row: this runs for every NTU that changed in a batch, a few
        # thousand times a second on a large fleet.
        if update.loss is not None:
            with_probe.append(_all_values(update))
        else:
            without_probe.append(_values_without_probe(update))
    await _UPSERT_ALL.execute(session, with_probe)
    await _UPSERT_WITHOUT_PROBE.execute(session, without_probe)


_ALL_FIELDS: Final = tuple(f.name for f in fields(NtuStatusUpdate))
_FIELDS_WITHOUT_PROBE: Final = tuple(n for n in _ALL_FIELDS if n not in _PROBE_FIELDS)
_all_values: Final = attrgetter(*_ALL_FIELDS)
_values_without_probe: Final = attrgetter(*_FIELDS_WITHOUT_PROBE)
_TABLE: Final = cast(Table, NtuState.__table__)
_UPSERT_ALL: Final = RowUpsert(_TABLE, _ALL_FIELDS, ["ntu_id"])
_UPSERT_WITHOUT_PROBE: Final = RowUpsert(_TABLE, _FIELDS_WITHOUT_PROBE, ["ntu_id"])
