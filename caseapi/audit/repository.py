"""``select()`` code of the audit log: append, list with filters, purge."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.audit.enums import AuditAction, AuditTarget
from caseapi.audit.models import AuditEvent, AuditPurge


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditFilters:
    """What ``GET /v1/audit`` matches; every given filter must hold."""

    actor: str | None = None
    actions: Sequence[AuditAction] = ()
    target_type: AuditTarget | None = None
    target_id: str | None = None
    customer_id: str | None = None
    since: datetime | None = None
    before: datetime | None = None


async def add_event(session: AsyncSession, *, event: AuditEvent) -> AuditEvent:
    """Append ``event`` in the caller's transaction (flushed: its id is known)."""
    session.add(event)
    await session.flush()
    return event


def _filtered(stmt: Select[Any], filters: AuditFilters) -> Select[Any]:
    if filters.actor is not None:
        stmt = stmt.where(AuditEvent.actor == filters.actor)
    if filters.actions:
        stmt = stmt.where(AuditEvent.action.in_([a.value for a in filters.actions]))
    if filters.target_type is not None:
        stmt = stmt.where(AuditEvent.target_type == filters.target_type.value)
    if filters.target_id is not None:
        stmt = stmt.where(AuditEvent.target_id == filters.target_id)
    if filters.customer_id is not None:
        stmt = stmt.where(AuditEvent.customer_id == filters.customer_id)
    if filters.since is not None:
        stmt = stmt.where(AuditEvent.at >= filters.since)
    if filters.before is not None:
        stmt = stmt.where(AuditEvent.at < filters.before)
    return stmt


async def list_events(
    session: AsyncSession, *, filters: AuditFilters, before_id: int | None, limit: int
) -> list[AuditEvent]:
    """Up to ``limit`` rows matching ``filters``, newest (highest id) first, below ``before_id``."""
    stmt = _filtered(select(AuditEvent), filters)
    if before_id is not None:
        stmt = stmt.where(AuditEvent.id < before_id)
    stmt = stmt.order_by(AuditEvent.id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def count_events(session: AsyncSession, *, filters: AuditFilters) -> int:
    """How many rows match ``filters`` (every page)."""
    stmt = _filtered(select(func.count()).select_from(AuditEvent), filters)
    return int((await session.execute(stmt)).scalar_one())


async def any_before(session: AsyncSession, *, cutoff: datetime) -> bool:
    """Whether a row older than ``cutoff`` exists (a cheap read before a purge)."""
    stmt = select(AuditEvent.id).where(AuditEvent.at < cutoff).limit(1)
    return (await session.execute(stmt)).first() is not None


async def purge_before(session: AsyncSession, *, cutoff: datetime, limit: int) -> int:
    """Delete up to ``limit`` of the oldest rows older than ``cutoff``; return how many.

    The only DELETE the database lets through (``caseapi.audit.models``): the permit
    for ``cutoff`` is written first and removed again, all in the caller's
    transaction, which must commit right after.
    """
    await add_permit(session, cutoff=cutoff)
    oldest = (
        select(AuditEvent.id).where(AuditEvent.at < cutoff).order_by(AuditEvent.id).limit(limit)
    )
    result = await session.execute(delete(AuditEvent).where(AuditEvent.id.in_(oldest)))
    await session.execute(delete(AuditPurge))
    deleted: int = getattr(result, "rowcount", 0)
    return deleted


async def add_permit(session: AsyncSession, *, cutoff: datetime) -> None:
    """Write the purge permit for ``cutoff`` (``purge_before`` removes it again)."""
    session.add(AuditPurge(purge_before=cutoff))
    await session.flush()
