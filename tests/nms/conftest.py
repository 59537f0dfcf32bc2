"""The database fixtures of tests/caseapi (SQLite and PostgreSQL), for detector tests."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.database import make_engine, make_sessionmaker
from tests.caseapi.conftest import (  # noqa: F401 - re-exported fixtures
    database,
    pg_server,
    sqlite_template,
)


@pytest.fixture(name="sqlite_sessionmaker")
async def sqlite_sessionmaker_fixture(
    sqlite_template: Path,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A migrated SQLite database of the test's own, where the database is not what is
    tested (SQLite only: ``database`` runs a test on both backends)."""
    path = tmp_path / "api.db"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()
