"""Read-side queries of the NOC board and the console's change feed.

The board shows the incidents being worked (P1 / P2) and the cases whose SLA is
breached or about to be; the change feed asks, every second, whether anything about
cases changed at all (``change_marker``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.cases.enums import WORKING_STATUSES, CasePriority, CaseType
from caseapi.cases.models import Case, CaseEvent


@dataclass(frozen=True, slots=True)
class SlaWatch:
    """Open cases past an SLA deadline, and those whose deadline is near."""

    breached: list[Case]
    at_risk: list[Case]


async def working_incidents(session: AsyncSession, *, limit: int) -> list[Case]:
    """The P1 and P2 incidents being worked (not solved yet), P1 first, oldest first."""
    stmt = (
        select(Case)
        .where(
            Case.status.in_(sorted(WORKING_STATUSES)),
            Case.type == CaseType.INCIDENT,
            Case.priority.in_([CasePriority.P1, CasePriority.P2]),
        )
        .order_by(Case.priority, Case.created_at, Case.id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def sla_watch(
    session: AsyncSession, *, now: datetime, within: timedelta, limit: int
) -> SlaWatch:
    """Cases being worked that breached a deadline, and those due within ``within``.

    Breached: the first response or the repair time was missed (the ticker stamps
    ``*_breached_at``). At risk: not breached, and the first response (not given yet)
    or the repair (clock not paused on the customer) is due before ``now + within``.
    """
    working = Case.status.in_(sorted(WORKING_STATUSES))
    breached_flag = or_(
        Case.first_response_breached_at.is_not(None), Case.ttr_breached_at.is_not(None)
    )
    horizon = now + within
    near = or_(
        and_(Case.first_responded_at.is_(None), Case.first_response_due_at <= horizon),
        and_(Case.paused_at.is_(None), Case.ttr_due_at <= horizon),
    )
    breached = select(Case).where(working, breached_flag).order_by(Case.id).limit(limit)
    at_risk = select(Case).where(working, ~breached_flag, near).order_by(Case.id).limit(limit)
    return SlaWatch(
        breached=list((await session.execute(breached)).scalars()),
        at_risk=list((await session.execute(at_risk)).scalars()),
    )


async def change_marker(session: AsyncSession) -> tuple[object, ...]:
    """A value that changes whenever a case is created or changed.

    Every change to a case writes a timeline entry (``case_events``), whose id only
    grows; ``max(updated_at)`` also catches a change recorded without one. Both are
    read from an index: this runs every second.
    """
    last_event = (await session.execute(select(func.max(CaseEvent.id)))).scalar_one()
    last_update = (await session.execute(select(func.max(Case.updated_at)))).scalar_one()
    return (last_event, last_update)
