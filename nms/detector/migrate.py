"""Schema migration of the detector's own tables (``nms/detector/migrations``).

The detector's history is kept in its own Alembic version table
(``nms_detector_alembic_version``), so it runs beside the case service's migrations
in the same database, in either order, without one seeing the other's revisions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

#: Advisory lock key held while migrating on PostgreSQL; not the case service's.
_MIGRATION_LOCK: Final = 0x6E6D735F64657465  # "nms_dete"

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    """An Alembic ``Config`` for the packaged detector migrations (no ini file)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


async def migrate_detector_state(engine: AsyncEngine, *, revision: str = "head") -> None:
    """Create or upgrade the detector's tables to ``revision`` (default: the newest).

    Run it after the case service's migrations: the first revision copies the legacy
    ``ntu_states`` rows (kept there by older versions) when that table exists.

    Args:
        engine: the database of the case service (SQLite or PostgreSQL).
        revision: the Alembic revision to upgrade to.
    """
    async with engine.connect() as plain:
        # SQLite: take the write lock first (BEGIN IMMEDIATE, with the case service's
        # engine), so that concurrent starters queue instead of racing on the DDL.
        conn = await plain.execution_options(sqlite_begin="IMMEDIATE")
        async with conn.begin():
            if conn.dialect.name == "postgresql":
                # Several processes start at once in the distributed wiring (detectors
                # taking over, standbys); one migrates, the others wait, find nothing.
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                )
            await conn.run_sync(_upgrade, revision)


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
