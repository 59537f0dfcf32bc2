"""What a read costs the database connection: no ping of a connection just returned,
no transaction around a session of reads on PostgreSQL (``caseapi.core.database``).

A ``GET`` of a case was one ``SELECT`` wrapped in six round trips on PostgreSQL (the
pool's ping: ``BEGIN``, ``;``, ``ROLLBACK``; then ``BEGIN``, the ``SELECT``,
``ROLLBACK``); these keep it at one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from caseapi.core.database import make_engine, make_sessionmaker, session_scope
from tests.caseapi.conftest import Database


def _count_pings(engine: AsyncEngine) -> list[int]:
    """Count the dialect's pings of ``engine`` (one entry each)."""
    dialect = engine.sync_engine.dialect
    real = dialect.do_ping
    pings: list[int] = []

    def counted(dbapi_connection: Any) -> bool:
        pings.append(1)
        return real(dbapi_connection)

    dialect.do_ping = counted  # type: ignore[method-assign]
    return pings


@pytest.fixture
async def own_engine(database: Database) -> AsyncIterator[Callable[..., AsyncEngine]]:
    """Makes engines of their own on ``database`` (``make_engine``'s options), with
    a pool the test may reshape; disposed of after the test."""
    engines: list[AsyncEngine] = []

    def make(**options: Any) -> AsyncEngine:
        engines.append(make_engine(database.url, **options))
        return engines[-1]

    yield make
    for engine in engines:
        await engine.dispose()


#: The ``database`` fixture on one backend only.
on_postgres = pytest.mark.parametrize(
    "database", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
on_sqlite = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


async def _now_twice(engine: AsyncEngine, *, reads: bool) -> tuple[datetime, datetime]:
    # now() is the start of the transaction: two statements of one transaction see
    # the same; two statements in autocommit, each their own.
    async with session_scope(make_sessionmaker(engine), reads=reads) as session:
        first = (await session.execute(text("SELECT clock_timestamp(), now()"))).one()
        await asyncio.sleep(0.01)
        second = (await session.execute(text("SELECT now()"))).scalar_one()
    assert first[0] >= first[1]
    return first[1], second


@on_postgres
async def test_a_session_of_reads_runs_each_statement_on_its_own_on_postgres(
    database: Database,
) -> None:
    one, two = await _now_twice(database.engine, reads=True)
    assert two > one


@on_postgres
async def test_other_sessions_keep_their_transaction(database: Database) -> None:
    one, two = await _now_twice(database.engine, reads=False)
    assert two == one


@on_postgres
async def test_a_session_of_reads_leaves_the_pooled_connection_transactional(
    own_engine: Callable[..., AsyncEngine],
) -> None:
    # The autocommit of a session of reads ends with it: the connection it returns to
    # the pool (the pool has one here) begins transactions again for the next session.
    engine = own_engine()
    engine.sync_engine.pool._pool.maxsize = 1  # type: ignore[attr-defined]
    await _now_twice(engine, reads=True)
    one, two = await _now_twice(engine, reads=False)
    assert one == two


@on_sqlite
async def test_a_session_of_reads_on_sqlite_begins_nothing(database: Database) -> None:
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with session_scope(database.sessionmaker, reads=True) as session:
            await session.execute(text("SELECT 1"))
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", seen)
    # Each statement on its own, as on PostgreSQL (caseapi.core.database).
    assert statements == ["SELECT 1"], statements


async def test_a_session_cannot_both_write_and_only_read(database: Database) -> None:
    with pytest.raises(ValueError, match="not both"):
        async with session_scope(database.sessionmaker, write=True, reads=True):
            pass


@on_postgres
async def test_a_connection_returned_a_moment_ago_is_not_pinged(
    own_engine: Callable[..., AsyncEngine],
) -> None:
    engine = own_engine(ping_after_idle=60)
    pings = _count_pings(engine)
    for _ in range(3):
        async with session_scope(make_sessionmaker(engine), reads=True) as session:
            await session.execute(text("SELECT 1"))
    assert pings == []


@on_postgres
async def test_a_connection_that_rested_is_pinged(
    own_engine: Callable[..., AsyncEngine],
) -> None:
    engine = own_engine(ping_after_idle=0.05)
    pings = _count_pings(engine)
    sessionmaker = make_sessionmaker(engine)
    async with session_scope(sessionmaker) as session:
        await session.execute(text("SELECT 1"))
    assert pings == []  # a new connection needs none
    await asyncio.sleep(0.1)
    async with session_scope(sessionmaker) as session:
        await session.execute(text("SELECT 1"))
    assert pings == [1]


@on_postgres
async def test_a_connection_that_died_while_resting_is_replaced(
    database: Database, own_engine: Callable[..., AsyncEngine]
) -> None:
    # As pool_pre_ping: a backend gone while the connection rested in the pool costs
    # the next session nothing but a new connection.
    sessionmaker = make_sessionmaker(own_engine(ping_after_idle=0.05))
    async with session_scope(sessionmaker) as session:
        pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    async with database.engine.connect() as admin:
        await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await admin.commit()
    await asyncio.sleep(0.1)
    async with session_scope(sessionmaker, reads=True) as session:
        again = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    assert again != pid


def test_ping_after_idle_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="ping_after_idle"):
        make_engine("postgresql+asyncpg://x@127.0.0.1/x", ping_after_idle=-1)
