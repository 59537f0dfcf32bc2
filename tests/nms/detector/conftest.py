"""The case service's databases (SQLite and PostgreSQL), with the detector's own schema."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from nms.detector.migrate import migrate_detector_state
from tests.caseapi.conftest import Database


async def drop_detector_schema(engine: AsyncEngine) -> None:
    """Back to what the case service's migrations alone make."""
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS detector_ntu_states"))
        await conn.execute(text("DROP TABLE IF EXISTS nms_detector_alembic_version"))


@pytest.fixture
async def database(database: Database) -> AsyncIterator[Database]:
    """``tests/caseapi``'s database, migrated for the detector too."""
    await migrate_detector_state(database.engine)
    try:
        yield database
    finally:
        if database.backend == "postgres":
            # One PostgreSQL database serves the whole session, the caseapi tests too
            # (which compare it with the case service's models): leave it as found.
            await drop_detector_schema(database.engine)
