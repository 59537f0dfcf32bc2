"""Yearly reference counters (``CS-2026-000042``, ``MW-2026-0042``): gap-free, race-free.

A counter table has one row per year holding the last number handed out. Taking the
next one is an upsert inside the transaction that inserts the numbered row: the
counter row stays locked until that transaction ends, so concurrent creators queue
there and never share a number, and a rollback returns the number.
"""

from __future__ import annotations

from sqlalchemy import Integer
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column


class YearCounter:
    """Mixin of a counter table: ``year`` (the key) and ``last_value``."""

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_value: Mapped[int] = mapped_column(Integer)


async def next_in_year(
    session: AsyncSession, counter: type[YearCounter], *, year: int, count: int = 1
) -> int:
    """Take the next ``count`` numbers of ``year`` from the ``counter`` table; return
    the last of them (1 for a new year and one number). The numbers taken are
    ``last - count + 1`` to ``last``, all in one statement.

    Raises:
        ValueError: ``count`` is below 1.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(counter)
        .values(year=year, last_value=count)
        .on_conflict_do_update(
            index_elements=[counter.year], set_={"last_value": counter.last_value + count}
        )
        .returning(counter.last_value)
    )
    return int((await session.execute(stmt)).scalar_one())
