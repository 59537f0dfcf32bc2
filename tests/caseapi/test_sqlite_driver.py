"""The one-hop aiosqlite cursor (``caseapi.core.sqlite_driver``) behind ``make_engine``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from caseapi.core import sqlite_driver
from caseapi.core.database import make_engine, make_sessionmaker, session_scope


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
    yield engine
    await engine.dispose()


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(engine)


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the calls made on aiosqlite's connection threads."""
    seen: list[str] = []
    real: Any = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(fn, "__name__", repr(fn)))
        return await real(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return seen


def test_the_installed_aiosqlite_is_supported(engine: AsyncEngine) -> None:
    assert sqlite_driver.supported()
    assert isinstance(engine.dialect.loaded_dbapi, sqlite_driver.OneHopDbapi)


async def test_statements_return_rows_counts_and_ids(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with session_scope(sessionmaker, write=True) as session:
        inserted: Any = await session.execute(text("INSERT INTO t (v) VALUES ('a')"))
        assert inserted.lastrowid == 1
        await session.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "b"}, {"v": "c"}])
        updated: Any = await session.execute(text("UPDATE t SET v = v || '!' WHERE id > 1"))
        assert updated.rowcount == 2
        await session.commit()
    async with session_scope(sessionmaker) as session:
        rows = (await session.execute(text("SELECT id, v FROM t ORDER BY id"))).all()
        assert [tuple(row) for row in rows] == [(1, "a"), (2, "b!"), (3, "c!")]
        assert (await session.execute(text("SELECT v FROM t WHERE id = 9"))).first() is None


@pytest.mark.parametrize(
    ("reads", "expected"),
    [
        # BEGIN goes with the first SELECT; the pool's reset after the session's
        # rollback has nothing left to end.
        (False, ["_run", "_run", "rollback"]),
        # A session of reads sends no BEGIN: no transaction is open after each
        # statement, nothing to end.
        (True, ["_run", "_run"]),
    ],
)
async def test_a_read_costs_one_hop_per_statement_and_one_to_end_a_snapshot(
    sessionmaker: async_sessionmaker[AsyncSession],
    hops: list[str],
    reads: bool,
    expected: list[str],
) -> None:
    async with session_scope(sessionmaker, reads=reads) as session:
        await session.execute(text("SELECT 1"))  # the pool's connection exists now
    hops.clear()
    async with session_scope(sessionmaker, reads=reads) as session:
        await session.execute(text("SELECT count(*) FROM t"))
        await session.execute(text("SELECT 2"))
    assert hops == expected
    hops.clear()
    async with session_scope(sessionmaker, reads=reads):
        pass
    assert hops == []


@pytest.mark.parametrize(("reads", "second"), [(False, "before"), (True, "after")])
async def test_a_read_session_keeps_its_snapshot_unless_it_only_reads(
    sessionmaker: async_sessionmaker[AsyncSession], reads: bool, second: str
) -> None:
    # A session of reads sees, at each statement, what was committed before it: as at
    # PostgreSQL's READ COMMITTED, where such a session runs in autocommit too.
    async with session_scope(sessionmaker, write=True) as session:
        await session.execute(text("INSERT INTO t (v) VALUES ('before')"))
        await session.commit()
    async with session_scope(sessionmaker, reads=reads) as reader:
        assert (await reader.execute(text("SELECT v FROM t"))).scalar_one() == "before"
        async with session_scope(sessionmaker, write=True) as writer:
            await writer.execute(text("UPDATE t SET v = 'after'"))
            await writer.commit()
        assert (await reader.execute(text("SELECT v FROM t"))).scalar_one() == second
    async with session_scope(sessionmaker) as reader:
        assert (await reader.execute(text("SELECT v FROM t"))).scalar_one() == "after"


async def test_a_failed_statement_rolls_back_and_releases_the_write_lock(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with session_scope(sessionmaker, write=True) as session:
        await session.execute(text("INSERT INTO t (v) VALUES ('x')"))
        await session.commit()
    async with session_scope(sessionmaker, write=True) as session:
        await session.execute(text("INSERT INTO t (v) VALUES ('y')"))
        with pytest.raises(IntegrityError):
            await session.execute(text("INSERT INTO t (v) VALUES ('x')"))
    async with session_scope(sessionmaker, write=True) as session:
        await session.execute(text("INSERT INTO t (v) VALUES ('z')"))
        await session.commit()
    async with session_scope(sessionmaker) as session:
        values = (await session.execute(text("SELECT v FROM t ORDER BY id"))).scalars().all()
    assert values == ["x", "z"]


async def test_a_write_left_without_commit_is_rolled_back(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with session_scope(sessionmaker, write=True) as session:
        await session.execute(text("INSERT INTO t (v) VALUES ('lost')"))
    async with session_scope(sessionmaker) as session:
        assert (await session.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0
