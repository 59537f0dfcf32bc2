"""Engine, migrations and the constraints the database itself must enforce."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import IntegrityError

from caseapi.cases import repository
from caseapi.cases.enums import CasePriority, CaseSource, CaseStatus, CaseType
from caseapi.cases.models import Case
from caseapi.core.base import ACTOR_LENGTH, Base
from caseapi.core.database import (
    alembic_config,
    decode_cursor,
    encode_cursor,
    make_engine,
    migrate,
)
from caseapi.core.errors import (
    CaseApiError,
    DatabaseConfigError,
    DatabaseUnavailableError,
    InvalidCursorError,
)
from caseapi.core.fulltext import include_in_schema_comparison
from tests.caseapi.conftest import START, Database


def _diffs(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            "compare_server_default": True,
            # The search's tables, columns and indexes (FTS5 on SQLite, a generated
            # tsvector on PostgreSQL) cannot be models: caseapi.core.fulltext.
            "include_name": include_in_schema_comparison,
        },
    )
    return list(compare_metadata(context, Base.metadata))


async def test_migrated_schema_matches_models(database: Database) -> None:
    async with database.engine.connect() as conn:
        assert await conn.run_sync(_diffs) == []


async def test_migrate_twice_is_a_no_op(database: Database) -> None:
    await migrate(database.engine)
    async with database.engine.connect() as conn:
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert version == head


def _case(ref: str, *, status: CaseStatus, dedup_key: str = "ntu:x:down") -> Case:
    return Case(
        ref=ref,
        type=CaseType.INCIDENT,
        priority=CasePriority.P1,
        status=status,
        source=CaseSource.PROACTIVE,
        dedup_key=dedup_key,
        summary="x",
        created_at=START,
        updated_at=START,
    )


async def test_one_open_case_per_dedup_key_is_enforced_by_the_database(
    database: Database,
) -> None:
    async with database.sessionmaker() as session:
        await repository.add_case(session, case=_case("CS-2026-000001", status=CaseStatus.SOLVED))
        await session.commit()
    async with database.sessionmaker() as session:
        with pytest.raises(IntegrityError):
            await repository.add_case(session, case=_case("CS-2026-000002", status=CaseStatus.NEW))
    # Terminal cases are outside the partial index: any number may share the key.
    async with database.sessionmaker() as session:
        for n, status in enumerate([CaseStatus.CLOSED, CaseStatus.CANCELLED, CaseStatus.CLOSED]):
            await repository.add_case(session, case=_case(f"CS-2026-00001{n}", status=status))
        await repository.add_case(
            session, case=_case("CS-2026-000020", status=CaseStatus.NEW, dedup_key="other")
        )
        await session.commit()


async def test_sqlite_pragmas(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}", busy_timeout=2.5)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 2500
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("not a url", "malformed"),
        ("mysql+aiomysql://root:hunter2@db/x", "unsupported database driver"),
        ("postgresql://postgres:hunter2@db/x", "unsupported database driver"),
        ("sqlite+aiosqlite://", "needs a file path"),
    ],
)
def test_bad_url_is_a_clear_error_with_the_password_masked(url: str, fragment: str) -> None:
    with pytest.raises(DatabaseConfigError) as info:
        make_engine(url)
    assert fragment in str(info.value)
    assert "hunter2" not in str(info.value)
    assert isinstance(info.value, CaseApiError)


async def test_unreachable_database_names_the_masked_url() -> None:
    engine = make_engine("postgresql+asyncpg://postgres:hunter2@127.0.0.1:1/nms", connect_timeout=2)
    try:
        with pytest.raises(DatabaseUnavailableError) as info:
            await migrate(engine)
    finally:
        await engine.dispose()
    message = str(info.value)
    assert "postgresql+asyncpg://postgres:***@127.0.0.1:1/nms" in message
    assert "hunter2" not in message


async def test_missing_sqlite_directory_is_unavailable(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'x.db'}")
    try:
        with pytest.raises(DatabaseUnavailableError, match="unable to open database file"):
            await migrate(engine)
    finally:
        await engine.dispose()
    await _aiosqlite_threads_finished()


async def _aiosqlite_threads_finished() -> None:
    # A failed aiosqlite connect stops its worker thread without awaiting it; the
    # thread then reports to this test's event loop. Let it do so before the loop
    # closes, or it raises "Event loop is closed" in the thread (a warning -> error).
    for _ in range(200):
        if not any(
            "_connection_worker_thread" in thread.name and thread.is_alive()
            for thread in threading.enumerate()
        ):
            return
        await asyncio.sleep(0.01)


# --- SQLite file modes: the database holds key hashes and webhook secrets -----------


@pytest.fixture(params=[0o022, 0o000, 0o277], ids=["umask-022", "umask-000", "umask-277"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _modes(directory: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()}


@pytest.mark.parametrize("uri", [False, True], ids=["path", "uri"])
async def test_a_new_sqlite_file_and_its_side_files_are_private(
    tmp_path: Path, umask: int, uri: bool
) -> None:
    path = tmp_path / "new.db"
    url = f"sqlite+aiosqlite:///file:{path}?uri=true" if uri else f"sqlite+aiosqlite:///{path}"
    engine = make_engine(url)
    try:
        await migrate(engine)  # writes; the pooled connection keeps -wal and -shm
        assert _modes(tmp_path) == {"new.db": 0o600, "new.db-wal": 0o600, "new.db-shm": 0o600}
    finally:
        await engine.dispose()
    # A rollback journal (journal_mode other than WAL) takes the file's mode too.
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=PERSIST")
        conn.execute("CREATE TABLE probe (x INTEGER)")
    conn.close()
    assert _modes(tmp_path)["new.db-journal"] == 0o600


async def test_an_existing_file_keeps_its_mode_and_a_shared_one_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shared, private = tmp_path / "shared.db", tmp_path / "private.db"
    for path, mode in ((shared, 0o644), (private, 0o600)):
        path.touch()
        path.chmod(mode)
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        try:
            await migrate(engine)
        finally:
            await engine.dispose()
    assert _modes(tmp_path) == {"shared.db": 0o644, "private.db": 0o600}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"database file {shared} is open to other users (mode 0644) and holds API key "
        "hashes and webhook secrets: chmod 600 it"
    ]


def test_cursor_round_trip_and_tampering() -> None:
    cursor = encode_cursor({"id": 42})
    assert decode_cursor(cursor, keys={"id": int}) == {"id": 42}
    for bad in ["", "!!!", encode_cursor({"id": "42"}), encode_cursor({"id": True}), "e30"]:
        with pytest.raises(InvalidCursorError):
            decode_cursor(bad, keys={"id": int})


def _actor_width(connection: Connection) -> int | None:
    columns = {c["name"]: c["type"] for c in inspect(connection).get_columns("case_events")}
    length: int | None = getattr(columns["actor"], "length", None)
    return length


def _alembic(connection: Connection, action: str, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    getattr(command, action)(config, revision)


async def test_actor_length_migration_round_trips(database: Database) -> None:
    async with database.engine.begin() as conn:
        assert await conn.run_sync(_actor_width) == ACTOR_LENGTH
        await conn.run_sync(_alembic, "downgrade", "0004")
    async with database.engine.begin() as conn:
        assert await conn.run_sync(_actor_width) == 64
        await conn.run_sync(_alembic, "upgrade", "head")
    async with database.engine.connect() as conn:
        assert await conn.run_sync(_actor_width) == ACTOR_LENGTH
        assert await conn.run_sync(_diffs) == []
    if database.backend == "sqlite":
        # Rewriting the declared types kept the triggers and the partial index.
        async with database.engine.connect() as conn:
            names = set(
                (await conn.execute(text("SELECT name FROM sqlite_master"))).scalars().all()
            )
        assert {"comments_no_update", "ux_cases_open_dedup_key"} <= names
