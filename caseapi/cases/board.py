"""The console's change feed's question about cases: did anything change at all?

The NOC board's lists come from the engineers' queues (``caseapi.cases.queues``).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.cases.models import Case, CaseEvent


async def change_marker(session: AsyncSession) -> tuple[object, ...]:
    """A value that changes whenever a case is created or changed.

    Every change to a case writes a timeline entry (``case_events``), whose id only
    grows; ``max(updated_at)`` also catches a change recorded without one. Both are
    read from an index, in one statement: the change feed asks every second, and each
    queue page before it counts.
    """
    stmt = select(
        select(func.max(CaseEvent.id)).scalar_subquery(),
        select(func.max(Case.updated_at)).scalar_subquery(),
    )
    last_event, last_update = (await session.execute(stmt)).one()
    return (last_event, last_update)
