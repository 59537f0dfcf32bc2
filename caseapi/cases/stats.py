"""Case statistics for the NOC: a few aggregate SELECTs, returned as plain data.

``case_snapshot`` takes the current figures (open cases by priority and status, SLA
deadlines at risk or breached, compliance over a rolling window, escalation levels,
the notification backlog, the age of each NTU's open incident). The detection
latencies and escalations only ever grow, so they are read incrementally:
``detections_since`` and ``escalations_since`` return what is new after an id the
caller remembers. How often to ask, and how to present it, is the caller's business
(``nms`` caches a snapshot per TTL and exports Prometheus metrics).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.cases.enums import (
    TERMINAL_STATUSES,
    WORKING_STATUSES,
    CaseEventKind,
    CasePriority,
    CaseSource,
    CaseStatus,
    CaseType,
)
from caseapi.cases.models import Case, CaseEvent, CaseNotification

#: Rows per ``detections_since`` call unless told otherwise.
DETECTIONS_BATCH: Final = 5000


@dataclass(slots=True)
class PriorityFigures:
    """Open-case figures of one priority, and its SLA compliance in the window."""

    at_risk_first_response: int = 0
    at_risk_repair: int = 0
    breached_first_response: int = 0
    breached_repair: int = 0
    monitoring: int = 0
    rfo_pending: int = 0
    unassigned: int = 0
    oldest_working_at: datetime | None = None
    first_response_met: int = 0
    first_response_missed: int = 0
    repair_met: int = 0
    repair_missed: int = 0


@dataclass(slots=True)
class CaseStatsSnapshot:
    """One reading of the case figures, taken at ``taken_at``.

    ``open_by`` and ``escalation`` are keyed ``(priority, status)`` and ``(priority,
    level)``; ``priorities`` has every priority; ``ntu_case_since`` maps ``(ntu id,
    priority)`` to when its oldest open P1/P2 incident was created.
    """

    taken_at: datetime
    open_by: dict[tuple[str, str], int]
    priorities: dict[str, PriorityFigures]
    escalation: dict[tuple[str, str], int]
    notifications_pending: int
    oldest_notification_at: datetime | None
    ntu_case_since: dict[tuple[str, str], datetime] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Detection:
    """A proactive incident: how long after the first failed probe it was opened."""

    case_id: int
    priority: str
    latency: float | None
    """Seconds from ``outage_start`` to creation (never negative); ``None`` unknown."""


@dataclass(frozen=True, slots=True)
class Escalations:
    """Escalations recorded after an event id, and the last one's id (``None``: none)."""

    count: int
    last_event_id: int | None


def _count_if(*conditions: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((and_(*conditions), 1), else_=0))


async def case_snapshot(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    now: datetime,
    at_risk_within: timedelta,
    compliance_window: timedelta,
) -> CaseStatsSnapshot:
    """The case figures at ``now``.

    Args:
        sessionmaker: The case database.
        now: When deadlines are judged (aware UTC).
        at_risk_within: A deadline due within this (and not met or breached) is at risk.
        compliance_window: Compliance counts the cases created within this before ``now``.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: The database failed.
    """
    async with sessionmaker() as session:
        open_by, escalation = await _open_counts(session)
        priorities = {str(p): PriorityFigures() for p in CasePriority}
        await _open_figures(session, priorities, soon=now + at_risk_within)
        await _compliance(session, priorities, since=now - compliance_window)
        pending, oldest_note = (
            await session.execute(
                select(func.count(), func.min(CaseNotification.created_at)).where(
                    CaseNotification.sent_at.is_(None)
                )
            )
        ).one()
        ntu_case_since = await _ntu_case_since(session)
    return CaseStatsSnapshot(
        taken_at=now,
        open_by=open_by,
        priorities=priorities,
        escalation=escalation,
        notifications_pending=int(pending or 0),
        oldest_notification_at=_aware(oldest_note),
        ntu_case_since=ntu_case_since,
    )


def _is_open() -> ColumnElement[bool]:
    return Case.status.not_in(TERMINAL_STATUSES)


async def _open_counts(
    session: AsyncSession,
) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    open_by = {
        (str(p), str(s)): n
        for p, s, n in await session.execute(
            select(Case.priority, Case.status, func.count())
            .where(_is_open())
            .group_by(Case.priority, Case.status)
        )
    }
    escalation = {
        (str(p), str(level)): n
        for p, level, n in await session.execute(
            select(Case.priority, Case.escalation_level, func.count())
            .where(_is_open())
            .group_by(Case.priority, Case.escalation_level)
        )
    }
    return open_by, escalation


async def _open_figures(
    session: AsyncSession, priorities: dict[str, PriorityFigures], *, soon: datetime
) -> None:
    working = Case.status.in_(WORKING_STATUSES)
    rows = await session.execute(
        select(
            Case.priority,
            _count_if(
                Case.first_responded_at.is_(None),
                Case.first_response_breached_at.is_(None),
                Case.first_response_due_at <= soon,
            ),
            _count_if(working, Case.ttr_breached_at.is_(None), Case.ttr_due_at <= soon),
            _count_if(
                Case.first_responded_at.is_(None), Case.first_response_breached_at.is_not(None)
            ),
            _count_if(working, Case.ttr_breached_at.is_not(None)),
            _count_if(Case.status == CaseStatus.SOLVED),
            _count_if(Case.status == CaseStatus.RFO_PENDING),
            _count_if(working, Case.assignee.is_(None)),
            func.min(case((working, Case.created_at), else_=None)),
        )
        .where(_is_open())
        .group_by(Case.priority)
    )
    for p, fr_risk, ttr_risk, fr_br, ttr_br, mon, rfo, unassigned, oldest in rows:
        fig = priorities.setdefault(str(p), PriorityFigures())
        fig.at_risk_first_response = int(fr_risk or 0)
        fig.at_risk_repair = int(ttr_risk or 0)
        fig.breached_first_response = int(fr_br or 0)
        fig.breached_repair = int(ttr_br or 0)
        fig.monitoring = int(mon or 0)
        fig.rfo_pending = int(rfo or 0)
        fig.unassigned = int(unassigned or 0)
        fig.oldest_working_at = _aware(oldest)


async def _compliance(
    session: AsyncSession, priorities: dict[str, PriorityFigures], *, since: datetime
) -> None:
    rows = await session.execute(
        select(
            Case.priority,
            _count_if(
                Case.first_responded_at.is_not(None), Case.first_response_breached_at.is_(None)
            ),
            _count_if(Case.first_response_breached_at.is_not(None)),
            _count_if(
                Case.solved_at.is_not(None),
                Case.ttr_due_at.is_not(None),
                Case.ttr_breached_at.is_(None),
            ),
            _count_if(Case.ttr_breached_at.is_not(None)),
        )
        .where(Case.created_at >= since)
        .group_by(Case.priority)
    )
    for p, fr_met, fr_missed, ttr_met, ttr_missed in rows:
        fig = priorities.setdefault(str(p), PriorityFigures())
        fig.first_response_met = int(fr_met or 0)
        fig.first_response_missed = int(fr_missed or 0)
        fig.repair_met = int(ttr_met or 0)
        fig.repair_missed = int(ttr_missed or 0)


async def _ntu_case_since(session: AsyncSession) -> dict[tuple[str, str], datetime]:
    rows = await session.execute(
        select(Case.ntu_id, Case.priority, func.min(Case.created_at))
        .where(
            _is_open(),
            Case.type == CaseType.INCIDENT,
            Case.ntu_id.is_not(None),
            Case.priority.in_((CasePriority.P1, CasePriority.P2)),
        )
        .group_by(Case.ntu_id, Case.priority)
    )
    since_by: dict[tuple[str, str], datetime] = {}
    for ntu, p, raw in rows:
        since = _aware(raw)
        if since is not None:
            since_by[(str(ntu), str(p))] = since
    return since_by


async def detections_since(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    after_case_id: int,
    limit: int = DETECTIONS_BATCH,
) -> list[Detection]:
    """The proactive incidents with an id above ``after_case_id``, by id, at most ``limit``.

    Call again after the last one's ``case_id`` while a full batch comes back.
    """
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(Case.id, Case.priority, Case.outage_start, Case.created_at)
                .where(
                    Case.id > after_case_id,
                    Case.source == CaseSource.PROACTIVE,
                    Case.type == CaseType.INCIDENT,
                )
                .order_by(Case.id)
                .limit(limit)
            )
        ).all()
    return [
        Detection(
            case_id=case_id,
            priority=str(priority),
            latency=None if start is None else max((created - start).total_seconds(), 0.0),
        )
        for case_id, priority, start, created in rows
    ]


async def escalations_since(
    sessionmaker: async_sessionmaker[AsyncSession], *, after_event_id: int
) -> Escalations:
    """How many escalations were recorded after timeline row ``after_event_id``."""
    async with sessionmaker() as session:
        count, last = (
            await session.execute(
                select(func.count(), func.max(CaseEvent.id)).where(
                    CaseEvent.id > after_event_id,
                    CaseEvent.kind == CaseEventKind.ESCALATED,
                )
            )
        ).one()
    return Escalations(count=int(count or 0), last_event_id=None if last is None else int(last))


def _aware(value: object) -> datetime | None:
    """Aggregates (MIN) lose the column type on some backends: make them aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
