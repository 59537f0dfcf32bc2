"""SQL for cases and their timeline. Callers own the session and the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from caseapi.cases.enums import TERMINAL_STATUSES, CaseEventKind, CasePriority, CaseStatus
from caseapi.cases.models import Case, CaseEvent, CaseRefCounter


@dataclass(frozen=True, slots=True)
class CaseFilters:
    """Filters for listing cases; ``None`` (or empty) means "any"."""

    statuses: Sequence[CaseStatus] = ()
    priorities: Sequence[CasePriority] = ()
    ntu_id: str | None = None
    updated_since: datetime | None = None


def _open() -> ColumnElement[bool]:
    return Case.status.not_in(sorted(TERMINAL_STATUSES))


async def get_open_case_by_dedup_key(session: AsyncSession, *, dedup_key: str) -> Case | None:
    """Return the one non-terminal case for ``dedup_key``, if any."""
    stmt = select(Case).where(Case.dedup_key == dedup_key, _open())
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_last_case_by_dedup_key(session: AsyncSession, *, dedup_key: str) -> Case | None:
    """Return the newest case for ``dedup_key`` in any status."""
    stmt = select(Case).where(Case.dedup_key == dedup_key).order_by(Case.id.desc()).limit(1)
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_case_by_ref(session: AsyncSession, *, ref: str) -> Case | None:
    """Return the case with reference ``ref`` (with ``previous_case`` loaded)."""
    stmt = select(Case).where(Case.ref == ref).options(selectinload(Case.previous_case))
    return (await session.execute(stmt)).scalar_one_or_none()


async def latest_open_case_ref_for_ntu(session: AsyncSession, *, ntu_id: str) -> str | None:
    """Return the reference of the newest non-terminal case on ``ntu_id``, if any."""
    stmt = select(Case.ref).where(Case.ntu_id == ntu_id, _open()).order_by(Case.id.desc()).limit(1)
    return (await session.execute(stmt)).scalar_one_or_none()


async def next_case_ref(session: AsyncSession, *, year: int) -> str:
    """Take the next reference for ``year``, e.g. ``CS-2026-000042``.

    The counter row stays locked until the caller's transaction ends, so concurrent
    creators queue here and never share a number; a rollback returns the number.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(CaseRefCounter)
        .values(year=year, last_value=1)
        .on_conflict_do_update(
            index_elements=[CaseRefCounter.year],
            set_={"last_value": CaseRefCounter.last_value + 1},
        )
        .returning(CaseRefCounter.last_value)
    )
    value = (await session.execute(stmt)).scalar_one()
    return format_case_ref(year=year, sequence=value)


def format_case_ref(*, year: int, sequence: int) -> str:
    """Format a case reference; the sequence grows past six digits if it must."""
    return f"CS-{year:04d}-{sequence:06d}"


async def add_case(session: AsyncSession, *, case: Case) -> Case:
    """Insert ``case`` and flush, so its id is known (and the unique indexes checked)."""
    session.add(case)
    await session.flush()
    return case


async def add_event(
    session: AsyncSession,
    *,
    case: Case,
    at: datetime,
    kind: CaseEventKind,
    actor: str,
    data: dict[str, Any] | None = None,
) -> CaseEvent:
    """Append a timeline entry to ``case``."""
    event = CaseEvent(case_id=case.id, at=at, kind=kind, actor=actor, data=data or {})
    session.add(event)
    await session.flush()
    return event


async def set_case_status(
    session: AsyncSession, *, case: Case, status: CaseStatus, at: datetime
) -> None:
    """Set ``case.status`` without any lifecycle rule (migrations, tests, admin tools).

    Records no timeline entry; callers that change a case on behalf of someone use
    the service instead.
    """
    case.status = status
    case.updated_at = at
    await session.flush()


def _filtered(stmt: Select[Any], filters: CaseFilters) -> Select[Any]:
    if filters.statuses:
        stmt = stmt.where(Case.status.in_(list(filters.statuses)))
    if filters.priorities:
        stmt = stmt.where(Case.priority.in_(list(filters.priorities)))
    if filters.ntu_id is not None:
        stmt = stmt.where(Case.ntu_id == filters.ntu_id)
    if filters.updated_since is not None:
        stmt = stmt.where(Case.updated_at >= filters.updated_since)
    return stmt


async def list_cases(
    session: AsyncSession, *, filters: CaseFilters, before_id: int | None, limit: int
) -> list[Case]:
    """Return up to ``limit`` cases matching ``filters``, newest (highest id) first.

    ``before_id`` is the keyset position: only cases with a smaller id are returned.
    """
    stmt = _filtered(select(Case), filters).options(selectinload(Case.previous_case))
    if before_id is not None:
        stmt = stmt.where(Case.id < before_id)
    stmt = stmt.order_by(Case.id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def count_cases(session: AsyncSession, *, filters: CaseFilters) -> int:
    """Count all cases matching ``filters`` (every page, not one)."""
    stmt = _filtered(select(func.count()).select_from(Case), filters)
    return int((await session.execute(stmt)).scalar_one())


async def list_events(session: AsyncSession, *, case_id: int) -> list[CaseEvent]:
    """Return the timeline of one case, oldest first."""
    stmt = select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
    return list((await session.execute(stmt)).scalars())
