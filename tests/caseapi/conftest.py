"""Database fixtures: every caseapi test runs on SQLite and on PostgreSQL.

SQLite gets a fresh file per test: a copy of one database migrated once per session
(``sqlite_template``; running the migrations for every test cost more than the
tests). PostgreSQL gets
one database per test session (``nms_test_<pid>``, migrated once, dropped at the
end) and every test starts from truncated tables. Tests commit for real: the
concurrency tests need several connections to see each other's work, which a
rolled-back outer transaction cannot give.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from caseapi.auth.principal import Role
from caseapi.cases.service import CaseService
from caseapi.core.database import make_engine, make_sessionmaker, migrate
from caseapi.core.errors import DatabaseUnavailableError
from caseapi.incidents import (
    Affected,
    IncidentOpen,
    IncidentService,
    Priority,
    UpstreamOpen,
    ntu_down_key,
)
from caseapi.models import Base  # registers every table (schema comparison, TRUNCATE)
from nms.clock import FakeClock
from tests.conftest import require

PG_ADMIN_URL = os.environ.get(
    "NMS_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
T = TypeVar("T")
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Database:
    backend: str
    url: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]


@dataclass(frozen=True)
class PgServer:
    url: str | None
    error: str | None


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on its own event loop in a helper thread.

    Session fixtures are first requested from inside a test's running loop (the
    ``database`` fixture asks for them lazily), where ``asyncio.run`` may not be used.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _admin(statement: str) -> None:
    # CREATE/DROP DATABASE cannot run inside a transaction.
    engine = make_engine(PG_ADMIN_URL)
    try:
        async with engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text(statement))
    finally:
        await engine.dispose()


async def _create_pg_database(name: str) -> str:
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await _admin(f'CREATE DATABASE "{name}"')
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()
    return url


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One migrated PostgreSQL database for the whole session, if the server is up."""
    name = f"nms_test_{os.getpid()}"
    try:
        # Its own event loop: fixtures' loops are per test.
        url = _run(_create_pg_database(name))
    except (OSError, SQLAlchemyError, DatabaseUnavailableError) as exc:
        yield PgServer(url=None, error=f"PostgreSQL unavailable: {exc}")
        return
    yield PgServer(url=url, error=None)
    _run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _truncate_all(engine: AsyncEngine) -> None:
    # DELETE with triggers off (the immutability triggers of comments and RFOs, and
    # the foreign-key checks) is ~7 ms on these near-empty tables; TRUNCATE of every
    # table is ~50 ms, paid by each PostgreSQL test. Needs a superuser (the local
    # server's postgres); anything else falls back to TRUNCATE.
    try:
        async with engine.begin() as conn:
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            for table in Base.metadata.sorted_tables:
                await conn.execute(table.delete())
            await conn.execute(text(_RESTART_SEQUENCES))
        return
    except DBAPIError:
        pass
    # The audit log refuses TRUNCATE: its rows go the purge's way, under a permit.
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables if t.name != "audit_events")
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO audit_purge (purge_before) VALUES ('infinity')"))
        await conn.execute(text("DELETE FROM audit_events"))
        await conn.execute(text("ALTER SEQUENCE audit_events_id_seq RESTART"))
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


#: Ids start at 1 again in every test, as with ``TRUNCATE ... RESTART IDENTITY``.
_RESTART_SEQUENCES = """
SELECT setval(format('%I.%I', schemaname, sequencename)::regclass, 1, false)
FROM pg_sequences WHERE schemaname = current_schema()
"""


async def _migrate_sqlite(path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate(engine)
    finally:
        # Closing the last connection checkpoints the WAL into the file, so the
        # file alone is the whole database.
        await engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite database file; tests copy it, never open it."""
    path = tmp_path_factory.mktemp("sqlite-template") / "cases.db"
    _run(_migrate_sqlite(path))
    return path


@pytest.fixture
async def sqlite_sessionmaker(
    sqlite_template: Path, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A migrated, empty SQLite database of the test's own, for what is SQLite's alone
    (the write queue) or where the database is not what is tested (``database`` runs a
    test on both backends)."""
    path = tmp_path / "sqlite.db"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, empty database on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "cases.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite+aiosqlite:///{path}"
        engine = make_engine(url)
    else:
        # Asked for here, not as a parameter: a SQLite-only run never touches PostgreSQL.
        pg_server: PgServer = request.getfixturevalue("pg_server")
        require(pg_server.url is not None, pg_server.error or "PostgreSQL unavailable")
        assert pg_server.url is not None
        url = pg_server.url
        engine = make_engine(url)
        await _truncate_all(engine)
    try:
        yield Database(
            backend=request.param, url=url, engine=engine, sessionmaker=make_sessionmaker(engine)
        )
    finally:
        await engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=START)


@pytest.fixture
def service(database: Database, clock: FakeClock) -> CaseService:
    return CaseService(sessionmaker=database.sessionmaker, clock=clock)


@pytest.fixture
def incidents(database: Database, clock: FakeClock) -> IncidentService:
    """The detector's side of the case service, on the same database and clock."""
    return IncidentService(sessionmaker=database.sessionmaker, clock=clock)


def incident(
    ntu_id: str = "ntu-1",
    *,
    customer_id: str = "cust-1",
    priority: Priority = "P1",
    outage_start: datetime = START - timedelta(minutes=10),
    detected_at: datetime = START,
    dedup_key: str | None = None,
) -> IncidentOpen:
    """An ``IncidentOpen`` as the detector sends it, with overridable fields."""
    return IncidentOpen(
        dedup_key=dedup_key or ntu_down_key(ntu_id),
        priority=priority,
        ntu_id=ntu_id,
        customer_id=customer_id,
        service_id=f"svc-{ntu_id}",
        site=f"site of {ntu_id}",
        outage_start=outage_start,
        detected_at=detected_at,
        summary=f"{ntu_id} down",
    )


def upstream(*affected: tuple[str, str]) -> UpstreamOpen:
    """Node ``pop1`` down since 10 min before ``START``, with ``(ntu, customer)`` behind it."""
    return UpstreamOpen(
        node_id="pop1",
        dedup_key="node:pop1:down",
        site="London",
        outage_start=START - timedelta(minutes=10),
        detected_at=START,
        summary="Node pop1 down",
        affected=tuple(Affected(n, c) for n, c in affected),
    )


# The API with its callers. A module that needs other customers defines its own
# ``app``; these are the common case. Imported in the functions: the fixture modules
# import this one.


@pytest.fixture
async def app(database: Database, service: CaseService, clock: FakeClock) -> FastAPI:
    """The case API over ``seed``: cust-1 (ntu-1, ntu-2) and cust-2 (ntu-9)."""
    from tests.caseapi.auth_fixtures import make_app
    from tests.caseapi.lifecycle_fixtures import seed

    await seed(database)
    return make_app(database, service, clock)


@pytest.fixture
async def staff(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An engineer."""
    from tests.caseapi.auth_fixtures import authed_client

    async with authed_client(app, role=Role.ENGINEER) as client:
        yield client


@pytest.fixture
async def acme(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Customer cust-1."""
    from tests.caseapi.auth_fixtures import authed_client

    async with authed_client(app, role=Role.CUSTOMER, customer_id="cust-1") as client:
        yield client


@pytest.fixture
async def other(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Customer cust-2."""
    from tests.caseapi.auth_fixtures import authed_client

    async with authed_client(app, role=Role.CUSTOMER, customer_id="cust-2") as client:
        yield client
