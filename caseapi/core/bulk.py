"""Inserting many new rows of one table in one statement."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.core.base import Base


async def bulk_insert(session: AsyncSession, model: type[Base], rows: Sequence[Base]) -> None:
    """Insert the unsaved ``rows`` of ``model`` with one executemany, in the caller's
    transaction.

    For rows whose generated ids nobody reads back: they stay out of the session.
    SQLite's ORM inserts rows one statement each when it must return their ids in
    order; this does not. Every column but the primary key is written as the row
    holds it (set them all: a column default does not apply to an unset one here).
    """
    if not rows:
        return
    table: Any = model.__table__
    columns = [c for c in table.columns if not c.primary_key]
    values = [{c.key: getattr(row, c.key) for c in columns} for row in rows]
    await session.execute(insert(model), values)
