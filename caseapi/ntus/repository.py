"""Read-side SQL for customers, NTUs and their public status.

The writes are ``caseapi.ntus.sync`` (the inventory) and ``caseapi.ntus.status``
(the detector's reports). An NTU without a ``ntu_states`` row has never been judged:
``unknown``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

from sqlalchemy import ColumnElement, String, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.customers.models import Customer
from caseapi.ntus.models import Ntu, NtuState

UNKNOWN_STATUS: Final = "unknown"


@dataclass(frozen=True, slots=True)
class NtuRow:
    """One NTU with its customer and its status (``None``: never judged)."""

    ntu: Ntu
    customer: Customer | None
    state: NtuState | None

    @property
    def status(self) -> str:
        return self.state.status if self.state is not None else UNKNOWN_STATUS


def _status_column() -> ColumnElement[str]:
    return func.coalesce(NtuState.status, UNKNOWN_STATUS, type_=String)


# Built once: the API's status read is a hot path (see ``caseapi.cases.repository``).
_NTU_ROW: Final = (
    select(Ntu, Customer, NtuState)
    .outerjoin(Customer, Customer.id == Ntu.customer_id)
    .outerjoin(NtuState, NtuState.ntu_id == Ntu.id)
    .where(Ntu.id == bindparam("ntu_id"))
)


async def get_ntu(session: AsyncSession, *, ntu_id: str) -> NtuRow | None:
    """Return one NTU with its customer and state."""
    row = (await session.execute(_NTU_ROW, {"ntu_id": ntu_id})).one_or_none()
    return None if row is None else NtuRow(ntu=row[0], customer=row[1], state=row[2])


async def get_ntus(session: AsyncSession, *, ntu_ids: Collection[str]) -> dict[str, Ntu]:
    """The NTUs of ``ntu_ids`` that the inventory has, by id (one query per 500 ids)."""
    wanted = sorted(set(ntu_ids))
    found: dict[str, Ntu] = {}
    for start in range(0, len(wanted), 500):
        stmt = select(Ntu).where(Ntu.id.in_(wanted[start : start + 500]))
        found.update((row.id, row) for row in (await session.scalars(stmt)).all())
    return found


async def list_ntus(
    session: AsyncSession,
    *,
    customer_id: str | None,
    status: str | None,
    after_id: str | None,
    limit: int,
) -> list[NtuRow]:
    """Return up to ``limit`` NTUs ordered by id, starting after ``after_id``."""
    stmt = (
        select(Ntu, Customer, NtuState)
        .outerjoin(Customer, Customer.id == Ntu.customer_id)
        .outerjoin(NtuState, NtuState.ntu_id == Ntu.id)
    )
    if customer_id is not None:
        stmt = stmt.where(Ntu.customer_id == customer_id)
    if status is not None:
        stmt = stmt.where(_status_column() == status)
    if after_id is not None:
        stmt = stmt.where(Ntu.id > after_id)
    stmt = stmt.order_by(Ntu.id).limit(limit)
    rows = (await session.execute(stmt)).all()
    return [NtuRow(ntu=row[0], customer=row[1], state=row[2]) for row in rows]


async def count_ntus(session: AsyncSession, *, customer_id: str | None, status: str | None) -> int:
    """Count the NTUs matching the filters."""
    stmt = select(func.count()).select_from(Ntu).outerjoin(NtuState, NtuState.ntu_id == Ntu.id)
    if customer_id is not None:
        stmt = stmt.where(Ntu.customer_id == customer_id)
    if status is not None:
        stmt = stmt.where(_status_column() == status)
    return int((await session.execute(stmt)).scalar_one())


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    """Status -> number of NTUs in it, every NTU of the inventory counted once.

    An NTU without a status row is ``unknown``; a status row of an NTU no longer in
    the inventory (kept on purpose, see ``NtuState``) or of an upstream node is not
    counted. Statuses nobody is in are absent.
    """
    status = _status_column()
    stmt = (
        select(status, func.count())
        .select_from(Ntu)
        .outerjoin(NtuState, NtuState.ntu_id == Ntu.id)
        .group_by(status)
    )
    return {str(name): int(count) for name, count in (await session.execute(stmt)).all()}


async def status_marker(session: AsyncSession) -> tuple[object, ...]:
    """A value that changes when any NTU changes status or the inventory changes.

    What the console's change feed polls every second: the number of NTUs, and per
    status its count and latest ``since`` (a transition changes a count, and the new
    state's ``since``), without reading any row's probe figures.
    """
    ntus = (await session.execute(select(func.count()).select_from(Ntu))).scalar_one()
    stmt = (
        select(NtuState.status, func.count(), func.max(NtuState.since))
        .group_by(NtuState.status)
        .order_by(NtuState.status)
    )
    per_status = tuple(tuple(row) for row in (await session.execute(stmt)).all())
    return (int(ntus), per_status)
