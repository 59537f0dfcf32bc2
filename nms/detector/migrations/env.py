"""Alembic environment for the detector's own schema (``detector_ntu_states``).

Normally run through ``nms.detector.migrate.migrate_detector_state``, which passes
an open connection in ``config.attributes["connection"]`` (Alembic's async cookbook
pattern). When run from the ``alembic`` command line instead, the URL comes from
``sqlalchemy.url`` in the config or ``NMS_DATABASE_URL`` in the environment.

Its history is recorded in its own version table, so it lives beside the case
service's Alembic history in the same database without either seeing the other.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from alembic import context
from sqlalchemy import Connection

from caseapi.database import make_engine
from nms.detector.models import DetectorBase

VERSION_TABLE = "nms_detector_alembic_version"
target_metadata = DetectorBase.metadata


def _ours(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    # Autogenerate compares only the detector's tables: the case service's tables in
    # the same database are not ours to drop.
    if type_ == "table":
        return name in target_metadata.tables
    return True


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        include_object=_ours,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine(url: str) -> None:
    # The case service's engine: SQLite pragmas, and a new file created private.
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
