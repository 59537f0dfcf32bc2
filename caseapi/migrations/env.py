"""Alembic environment for the case service schema.

Normally run through ``caseapi.core.database.migrate``, which passes an open
connection in ``config.attributes["connection"]`` (Alembic's async cookbook
pattern). When run from the ``alembic`` command line instead, the URL comes from
``sqlalchemy.url`` in the config or ``NMS_DATABASE_URL`` in the environment.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import Connection

from caseapi.cases.models import Case
from caseapi.core.base import Base
from caseapi.core.database import make_engine
from caseapi.core.fulltext import include_in_schema_comparison
from caseapi.ntus.models import Ntu

# Importing the model modules registers their tables on Base.metadata.
_MODELS = (Case, Ntu)
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        # The FTS5 virtual tables of SQLite's search cannot be declared as models.
        include_name=include_in_schema_comparison,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def main() -> None:
    if context.is_offline_mode():
        raise RuntimeError("offline (--sql) migrations are not supported")
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url") or os.environ.get("NMS_DATABASE_URL")
    if not url:
        raise RuntimeError("set sqlalchemy.url or NMS_DATABASE_URL to run migrations")
    asyncio.run(_run_with_own_engine(url))


main()
