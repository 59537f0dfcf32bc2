"""INSERT ... ON CONFLICT DO UPDATE on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession


async def upsert(
    session: AsyncSession, table: Any, rows: Sequence[dict[str, Any]], keys: Sequence[str]
) -> None:
    """Insert ``rows`` of one shape (the same keys), updating those whose ``keys`` exist.

    One statement executed with many parameter sets: SQLAlchemy compiles it once (and
    caches it), where a multi-row VALUES list would be compiled anew for every batch;
    on a large fleet that compilation was most of the cost per cycle.
    """
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(table)
    update = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
    await session.execute(
        stmt.on_conflict_do_update(index_elements=list(keys), set_=update), list(rows)
    )
