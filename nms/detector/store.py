"""The detector's durable state: one ``detector_ntu_states`` row per NTU or node.

The detector's in-memory state is the working copy; every change of the machine
state is written here in the same cycle, so a restart (even ``kill -9``) resumes
every NTU where it was and loses no timer. The one thing written less often is
what moves with every probe of an NTU that stays ``up`` - its last observation and
success times and its SNMP figures (rates, sysUpTime): a row is rewritten for them
once they are ``detector.refresh`` newer than the saved ones (``must_save``), so a
fleet of 100,000 NTUs does not rewrite 100,000 rows every probe cycle. A clean stop
writes them all; after a ``kill -9`` they can be up to ``refresh`` old, which reads
as a longer gap in the data (an up NTU may then go ``unknown`` for an instant at its
first observation, and its "up since" restarts), never as a lost outage timer.

The table is the detector's own (``nms.detector.models``); what the API shows goes
to the case service through ``IncidentSink.report_ntu_status``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import timedelta
from operator import attrgetter
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.database import RowUpsert, session_scope
from nms.detector.availability import NtuState, Status
from nms.detector.fusion import SnmpView
from nms.detector.models import DetectorNtuState

_SNMP_FIELDS = tuple(f.name for f in fields(SnmpView))
# The Core table: an executemany upsert, without the ORM's bulk bookkeeping.
_TABLE = cast(Table, DetectorNtuState.__table__)


@dataclass(frozen=True, slots=True)
class StoredState:
    """The machine state of one entry as it survives a restart."""

    state: NtuState
    case_ref: str | None
    case_pending: bool = False
    """The outage is confirmed but its case could not be opened yet (retried)."""
    degraded_case_ref: str | None = None
    degraded_reasons: str | None = None
    snmp: SnmpView = field(default_factory=SnmpView)


@dataclass(frozen=True, slots=True)
class LastProbe:
    """The latest burst's figures, shown by the API and the metrics (not stored)."""

    rtt_avg: float | None
    loss: float | None
    jitter: float | None


_FIGURES = frozenset({"in_bps", "out_bps", "error_rate", "sys_uptime"})
_SETTLED_SNMP = tuple(name for name in _SNMP_FIELDS if name not in _FIGURES)
# What of an ``up`` entry's state does not move with every probe, read in one C call
# each (``must_save`` runs for every NTU of every batch).
_settled_state = attrgetter(
    "status", "since", "outage_start", "confirm_from", "first_good_at", "good_streak", "case_open"
)
_settled_cases = attrgetter("case_ref", "case_pending", "degraded_case_ref", "degraded_reasons")
_settled_snmp = attrgetter(*_SETTLED_SNMP)


def must_save(saved: StoredState | None, new: StoredState, refresh: timedelta) -> bool:
    """Whether ``new`` is to be written now, the database holding ``saved``.

    Every change is, except one of an entry that is and stays ``up`` in its probe
    figures alone (observation times, SNMP rates and sysUpTime): that one waits
    until its last observation is ``refresh`` newer than the saved one.
    """
    if saved is None:
        return True
    before, after = saved.state, new.state
    if before.status != Status.UP or after.status != Status.UP:
        return saved != new
    if (
        _settled_state(before) != _settled_state(after)
        or _settled_cases(saved) != _settled_cases(new)
        or (saved.snmp is not new.snmp and _settled_snmp(saved.snmp) != _settled_snmp(new.snmp))
    ):
        return True
    seen_before, seen_after = before.last_observation_at, after.last_observation_at
    if seen_before is not None and seen_after is not None and seen_after - seen_before < refresh:
        return False
    return saved != new


async def load_states(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, StoredState]:
    """Every saved state, by NTU or node id."""
    async with sessionmaker() as session:
        rows = (await session.scalars(select(DetectorNtuState))).all()
    return {
        row.ntu_id: StoredState(
            state=NtuState(
                status=Status(row.status),
                since=row.since,
                outage_start=row.outage_start,
                confirm_from=row.confirm_from,
                first_good_at=row.first_good_at,
                good_streak=row.good_streak,
                last_observation_at=row.last_observation_at,
                last_success_at=row.last_success_at,
                case_open=row.case_ref is not None or row.case_pending,
            ),
            case_ref=row.case_ref,
            case_pending=row.case_pending,
            degraded_case_ref=row.degraded_case_ref,
            degraded_reasons=row.degraded_reasons,
            snmp=SnmpView(**{name: getattr(row, name) for name in _SNMP_FIELDS}),
        )
        for row in rows
    }


_COLUMNS = (
    "ntu_id",
    "status",
    "since",
    "outage_start",
    "confirm_from",
    "first_good_at",
    "good_streak",
    "last_observation_at",
    "last_success_at",
    "case_ref",
    "case_pending",
    "degraded_case_ref",
    "degraded_reasons",
    *_SNMP_FIELDS,
)
_UPSERT = RowUpsert(_TABLE, _COLUMNS, ["ntu_id"])
_snmp_values = attrgetter(*_SNMP_FIELDS)


def _row(ntu_id: str, stored: StoredState) -> tuple[Any, ...]:
    """The values of ``_COLUMNS``."""
    s = stored.state
    return (
        ntu_id,
        s.status.value,
        s.since,
        s.outage_start,
        s.confirm_from,
        s.first_good_at,
        s.good_streak,
        s.last_observation_at,
        s.last_success_at,
        stored.case_ref,
        stored.case_pending,
        stored.degraded_case_ref,
        stored.degraded_reasons,
        *_snmp_values(stored.snmp),
    )


async def save_states(
    sessionmaker: async_sessionmaker[AsyncSession], states: Iterable[tuple[str, StoredState]]
) -> None:
    """Upsert the given states in one transaction.

    One INSERT ... ON CONFLICT DO UPDATE executed with many parameter sets, compiled
    once, the values converted straight into the driver's parameters
    (``RowUpsert``): this runs for every batch of results.
    """
    rows = [_row(ntu_id, stored) for ntu_id, stored in states]
    if not rows:
        return
    # A write session: on SQLite it takes its turn with the API's writers in this
    # process instead of racing them for the lock (caseapi.database).
    async with session_scope(sessionmaker, write=True) as session:
        await _UPSERT.execute(session, rows)
        await session.commit()


async def write_states(session: AsyncSession, states: Iterable[tuple[str, StoredState]]) -> None:
    """``save_states`` in the caller's transaction (the caller commits)."""
    await _UPSERT.execute(session, [_row(ntu_id, stored) for ntu_id, stored in states])
