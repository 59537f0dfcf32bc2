"""Engine, sessions and schema migration for SQLite (embedded) and PostgreSQL.

- ``make_engine(url)`` accepts ``sqlite+aiosqlite:///path`` and
  ``postgresql+asyncpg://user:pass@host/db`` and turns a bad URL into
  ``DatabaseConfigError`` naming the (password-masked) URL.
- ``migrate(engine)`` applies the Alembic migrations shipped in
  ``caseapi/migrations`` up to head; no ``alembic.ini`` is needed at runtime.

SQLite transactions: Python's sqlite3 driver (and aiosqlite on top of it) does not
emit BEGIN before a SELECT, which breaks repeatable reads, and a deferred
transaction that reads and then writes fails with "database is locked" at once
(no busy wait) when another connection wrote in between. So we take over BEGIN
(the recipe in SQLAlchemy's SQLite dialect docs) and let writers ask for
``BEGIN IMMEDIATE`` through ``WRITE_TRANSACTION``: they then queue on the write lock
with ``busy_timeout`` instead of failing.

SQLite's busy wait is no queue, though: a waiting writer sleeps and polls, and with
20 writers in one process one of them could lose every poll for the whole
``busy_timeout`` (1 write in about 2,400 was 503 "database is locked"). So within a
process, write sessions (``session_scope(..., write=True)``) on a SQLite engine take
their turn from a FIFO ``asyncio.Lock`` first; only the head of that queue asks
SQLite for the lock, which it then gets at once unless another process (``nms
apikey create``) or a writer outside ``session_scope`` holds it (the detector's
state store writes through ``session_scope`` too). A turn ends with its transaction
(commit or rollback). A turn not given within ``WRITE_QUEUE_TIMEOUT`` is
``DatabaseUnavailableError`` (503 with ``Retry-After``), as is a lock still held
elsewhere after ``busy_timeout``.

SQLite file mode: the database holds API key hashes, webhook secrets and customers'
data, and SQLite creates a new file 0644 (less the umask). So before the first
connection we create a missing file ourselves, mode 0600 whatever the umask; SQLite
gives its ``-wal``, ``-shm`` and ``-journal`` files the database file's mode. An
existing file keeps its mode (its owner may have chosen it, e.g. for a backup
group); if others can read or write it, a warning says so.

PostgreSQL round trips: SQLAlchemy's ``pool_pre_ping`` pings every connection it
hands out, and asyncpg's ping is three statements (``BEGIN``, ``;``, ``ROLLBACK``):
more than the one read of a ``GET`` of a case. Only a connection idle in the pool for
``PING_AFTER_IDLE`` seconds or more is pinged (as HikariCP's ``aliveBypassWindowMs``):
a connection returned healthy a moment ago is used as it is; one that died since
fails its statement, which SQLAlchemy answers by invalidating the pool (and the API
with 503 ``Retry-After``). And a session of reads only (``session_scope(...,
reads=True)``) runs in autocommit on PostgreSQL: no ``BEGIN`` / ``ROLLBACK`` around
its statements. At READ COMMITTED (PostgreSQL's default, which we keep) every
statement takes its own snapshot inside a transaction too, so reads lose nothing.
On SQLite such a session sends no ``BEGIN`` either (``sqlite_begin`` ``NONE``), so
each statement reads what was committed before it - as on PostgreSQL - and there is
no ``ROLLBACK`` to send: a thread hop less per read, which is what a read costs most
(a hop wakes aiosqlite's thread, often on another CPU). Other sessions keep one
snapshot from their first statement (``BEGIN DEFERRED``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
import stat
import time
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    InvalidatePoolError,
    InvalidRequestError,
    NoSuchModuleError,
)
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from caseapi.core import sqlite_driver
from caseapi.core.errors import DatabaseConfigError, DatabaseUnavailableError, InvalidCursorError

logger = logging.getLogger(__name__)

#: Advisory lock key held while migrating on PostgreSQL (any constant of our own).
_MIGRATION_LOCK: Final = 0x6E6D735F6D696772  # "nms_migr"

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent.parent / "migrations"

SUPPORTED_DRIVERS: Final = ("sqlite+aiosqlite", "postgresql+asyncpg")

#: The largest row id (``INTEGER`` on PostgreSQL is 32-bit). Ids from clients
#: (paths, queries, cursors) beyond it are refused before they reach the driver.
MAX_ID: Final = 2**31 - 1

#: Execution options for a session that will write: ``BEGIN IMMEDIATE`` on SQLite
#: (see the module docstring), ignored by PostgreSQL. Use with
#: ``await session.connection(execution_options=WRITE_TRANSACTION)`` first thing.
WRITE_TRANSACTION: Final[Mapping[str, Any]] = {"sqlite_begin": "IMMEDIATE"}
#: Execution options of a session of reads only on PostgreSQL (the module docstring).
_AUTOCOMMIT: Final[Mapping[str, Any]] = {"isolation_level": "AUTOCOMMIT"}
#: ``sqlite_begin`` of a session of reads only on SQLite: no ``BEGIN``, so no
#: ``ROLLBACK`` either (see the module docstring).
_NO_BEGIN: Final = "NONE"
_SQLITE_READS: Final[Mapping[str, Any]] = {"sqlite_begin": _NO_BEGIN}

#: Seconds a pooled PostgreSQL connection may rest before it is pinged on checkout.
PING_AFTER_IDLE: Final = 1.0

#: Connections kept open per engine. SQLAlchemy's default (5, and 10 more that are
#: closed as soon as they are returned) made an API under 32 concurrent requests open
#: and close a connection for most of them: on SQLite a thread, the file, four
#: PRAGMAs; on PostgreSQL a login and the dialect's start-up queries. A pooled SQLite
#: connection costs a parked thread and at most its page cache (2 MB); the pool
#: grows only as far as concurrent sessions need.
SQLITE_POOL_SIZE: Final = 40
SQLITE_MAX_OVERFLOW: Final = 10
#: PostgreSQL counts connections against ``max_connections`` (100 by default) for
#: every process (API replicas, the detector): at most 30 here.
POSTGRES_POOL_SIZE: Final = 20
POSTGRES_MAX_OVERFLOW: Final = 10

#: The mode of a SQLite database file we create (and so of its side files).
SQLITE_FILE_MODE: Final = 0o600

#: Seconds a write session waits for its turn in this process's SQLite write queue.
#: A turn normally takes milliseconds; this only ends a wait behind a stuck writer.
WRITE_QUEUE_TIMEOUT: Final = 30.0

# One queue per SQLite engine and event loop (an asyncio.Lock belongs to one loop).
_write_queues: weakref.WeakKeyDictionary[
    Engine, weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]
] = weakref.WeakKeyDictionary()


def make_engine(
    url: str,
    *,
    connect_timeout: float = 5.0,
    busy_timeout: float = 5.0,
    echo: bool = False,
    ping_after_idle: float = PING_AFTER_IDLE,
) -> AsyncEngine:
    """Create the async engine for ``url``.

    Args:
        url: ``sqlite+aiosqlite:///path/to/file.db`` or ``postgresql+asyncpg://...``.
        connect_timeout: Seconds to wait for a PostgreSQL connection.
        busy_timeout: Seconds a SQLite writer waits for the write lock.
        echo: Log every statement (debugging).
        ping_after_idle: Seconds a pooled PostgreSQL connection may rest before it
            is pinged when handed out (0: every time, as ``pool_pre_ping``).

    Raises:
        DatabaseConfigError: The URL is malformed or names an unsupported driver.
    """
    if connect_timeout <= 0 or busy_timeout <= 0:
        raise ValueError("connect_timeout and busy_timeout must be positive")
    if ping_after_idle < 0:
        raise ValueError("ping_after_idle must not be negative")
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise DatabaseConfigError(f"malformed database URL: {exc}", url=url) from exc
    if parsed.drivername not in SUPPORTED_DRIVERS:
        raise DatabaseConfigError(
            f"unsupported database driver {parsed.drivername!r}; "
            f"use one of {', '.join(SUPPORTED_DRIVERS)}",
            url=url,
        )
    try:
        if parsed.get_backend_name() == "sqlite":
            return _make_sqlite_engine(parsed, busy_timeout=busy_timeout, echo=echo)
        engine = create_async_engine(
            parsed,
            echo=echo,
            connect_args={"timeout": connect_timeout},
            pool_size=POSTGRES_POOL_SIZE,
            max_overflow=POSTGRES_MAX_OVERFLOW,
        )
    except (ArgumentError, NoSuchModuleError, InvalidRequestError) as exc:
        raise DatabaseConfigError(f"cannot use database URL: {exc}", url=url) from exc
    ping_when_idle(engine, after=ping_after_idle)
    return engine


def ping_when_idle(
    engine: AsyncEngine, *, after: float, monotonic: Callable[[], float] = time.monotonic
) -> None:
    """Ping a connection ``engine``'s pool hands out if it rested ``after`` seconds or
    more since it was returned (or opened); a dead one is replaced, and the pool's older
    connections with it, as ``pool_pre_ping`` does."""
    sync_engine = engine.sync_engine
    dialect = sync_engine.dialect
    rested = "nms_rested_since"

    def mark(_dbapi_connection: Any, record: Any) -> None:
        record.info[rested] = monotonic()

    def check(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(rested)
        if since is not None and monotonic() - since < after:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                raise InvalidatePoolError() from exc
            raise

    event.listen(sync_engine, "connect", mark)
    event.listen(sync_engine, "checkin", mark)
    event.listen(sync_engine, "checkout", check)


def _make_sqlite_engine(url: URL, *, busy_timeout: float, echo: bool) -> AsyncEngine:
    if url.database in (None, "", ":memory:"):
        # Each pooled connection would get its own empty in-memory database.
        raise DatabaseConfigError(
            "SQLite needs a file path (sqlite+aiosqlite:///path/to/file.db)",
            url=url.render_as_string(hide_password=False),
        )
    # One thread hop per statement instead of four (caseapi.core.sqlite_driver).
    driver = {"module": sqlite_driver.OneHopDbapi()} if sqlite_driver.supported() else {}
    engine = create_async_engine(
        url,
        echo=echo,
        connect_args={"timeout": busy_timeout},
        pool_size=SQLITE_POOL_SIZE,
        max_overflow=SQLITE_MAX_OVERFLOW,
        **driver,
    )
    busy_ms = int(busy_timeout * 1000)

    checked = False

    @event.listens_for(engine.sync_engine, "do_connect")
    def _before_connect(
        _dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]
    ) -> None:
        # Before every new DBAPI connection (once the file exists, that costs one
        # failed open). Returning None lets the dialect connect as usual.
        nonlocal checked
        path = _sqlite_path(str(cargs[0]), uri=bool(cparams.get("uri")))
        if path is not None and not _create_private(path) and not checked:
            _warn_if_shared(path)
        checked = True

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Stop the driver from emitting its own BEGIN; _on_begin does it.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            # Durable enough in WAL mode (survives an application crash) and much
            # cheaper than FULL, which fsyncs on every commit.
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode == _NO_BEGIN:
            return  # a session of reads only: each statement on its own (session_scope)
        if mode not in ("DEFERRED", "IMMEDIATE"):
            raise ValueError(f"sqlite_begin must be DEFERRED or IMMEDIATE, not {mode!r}")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _sqlite_path(name: str, *, uri: bool) -> str | None:
    """The file SQLite opens for ``name``, or None when it will not create one."""
    if not uri or not name.startswith("file:"):
        return name
    # A URI filename (``?uri=true``): file:path?mode=...; only the default mode and
    # ``rwc`` create a missing file.
    parts = urlsplit(name)
    mode = parse_qs(parts.query).get("mode", ["rwc"])[-1]
    path = unquote(parts.path)
    if mode != "rwc" or path in ("", ":memory:"):
        return None
    return path


def _create_private(path: str) -> bool:
    """Create ``path`` empty with ``SQLITE_FILE_MODE`` unless it exists (an empty
    file is an empty SQLite database); return whether it was created."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, SQLITE_FILE_MODE)
    except OSError:
        # It exists (or is a symlink), or e.g. its directory is missing: then
        # SQLite's own open reports the problem, as before.
        return False
    try:
        # The umask can only take bits away; set the mode exactly, so that a strict
        # umask (0o277) cannot leave the owner unable to write either.
        os.fchmod(fd, SQLITE_FILE_MODE)
    finally:
        os.close(fd)
    return True


def _warn_if_shared(path: str) -> None:
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return
    if mode & 0o077:
        logger.warning(
            "database file %s is open to other users (mode %04o) and holds API key "
            "hashes and webhook secrets: chmod 600 it",
            path,
            mode,
        )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Return the session factory used by services and the API."""
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    """Return an Alembic ``Config`` for the packaged migrations (no ini file)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


async def migrate(engine: AsyncEngine, *, revision: str = "head") -> None:
    """Apply the Alembic migrations to ``revision`` (default: the newest).

    Raises:
        DatabaseUnavailableError: The database refused or did not answer the
            connection; the message names the masked URL.
    """
    url = engine.url.render_as_string(hide_password=False)
    try:
        conn = await engine.connect().start()
    except Exception as exc:
        # Connecting is the first thing done; whatever fails here (refused, timeout,
        # unknown database, bad credentials) means "cannot reach the database".
        raise DatabaseUnavailableError(f"cannot connect: {_describe(exc)}", url=url) from exc
    try:
        async with conn.begin():
            if conn.dialect.name == "postgresql":
                # Several processes start at once in the distributed wiring (detectors,
                # API replicas); one migrates, the others wait and then find nothing to do.
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                )
            await conn.run_sync(_upgrade, revision)
    finally:
        await conn.close()


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _describe(exc: BaseException) -> str:
    # SQLAlchemy appends a "Background on this error" link; keep the first line only.
    text = str(getattr(exc, "orig", None) or exc) or type(exc).__name__
    return text.splitlines()[0]


def encode_cursor(position: Mapping[str, Any]) -> str:
    """Encode a keyset position as an opaque, URL-safe pagination cursor."""
    raw = json.dumps(dict(position), separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, keys: Mapping[str, type]) -> dict[str, Any]:
    """Decode a cursor made by ``encode_cursor`` and check its keys and types.

    Raises:
        InvalidCursorError: The cursor is not one we issued.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursorError(cursor) from exc
    if not isinstance(position, dict) or set(position) != set(keys):
        raise InvalidCursorError(cursor)
    for key, kind in keys.items():
        value = position[key]
        # bool is an int subclass; a cursor never holds one.
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InvalidCursorError(cursor)
        # Ours hold ids in 1..MAX_ID and ids of text rows; nothing else fits a column.
        if isinstance(value, int) and not 0 < value <= MAX_ID:
            raise InvalidCursorError(cursor)
        if isinstance(value, str) and (len(value) > 200 or "\x00" in value):
            raise InvalidCursorError(cursor)
    return position


@asynccontextmanager
async def session_scope(
    sessionmaker: async_sessionmaker[AsyncSession], *, write: bool = False, reads: bool = False
) -> AsyncIterator[AsyncSession]:
    """Open a session and its connection at once; commit is the caller's job.

    Connecting eagerly turns "the database is down" into one error,
    ``DatabaseUnavailableError``, before any work starts. ``write=True`` begins
    with ``WRITE_TRANSACTION`` and, on SQLite, waits for its turn in the process's
    write queue first (see the module docstring). Leaving the block without a
    commit rolls back. ``reads=True`` promises that the session only reads: it then
    runs without a transaction, each statement on its own (see the module docstring).

    Raises:
        DatabaseUnavailableError: No connection (or, on SQLite, no turn in the
            write queue within ``WRITE_QUEUE_TIMEOUT``, or no write lock within
            the busy timeout).
    """
    if write and reads:
        raise ValueError("a session writes or only reads, not both")
    async with AsyncExitStack() as stack:
        session = sessionmaker()
        bind = session.get_bind()
        engine = bind if isinstance(bind, Engine) else bind.engine
        sqlite = engine.dialect.name == "sqlite"
        if write and sqlite:
            await stack.enter_async_context(_write_turn(engine, session, url=_masked_url(engine)))
        # Entered after the turn: closing it (a rollback if uncommitted) ends the turn
        # at the latest.
        await stack.enter_async_context(session)
        options: Mapping[str, Any] | None = None
        if write:
            options = WRITE_TRANSACTION
        elif reads:
            options = _SQLITE_READS if sqlite else _AUTOCOMMIT
        try:
            await session.connection(execution_options=options)
        except Exception as exc:
            raise DatabaseUnavailableError(
                f"cannot connect: {_describe(exc)}", url=_masked_url(engine)
            ) from exc
        yield session


def _masked_url(engine: Engine) -> str:
    # DatabaseConfigError / DatabaseUnavailableError mask the password themselves.
    return engine.url.render_as_string(hide_password=False)


@asynccontextmanager
async def _write_turn(engine: Engine, session: AsyncSession, *, url: str) -> AsyncIterator[None]:
    """Hold this process's SQLite write turn for ``engine`` (FIFO, bounded wait) until
    ``session``'s transaction ends: its commit or rollback frees SQLite's lock, so the
    next writer may begin while this one still returns its connection."""
    loop = asyncio.get_running_loop()
    queues = _write_queues.setdefault(engine, weakref.WeakKeyDictionary())
    lock = queues.setdefault(loop, asyncio.Lock())
    try:
        async with asyncio.timeout(WRITE_QUEUE_TIMEOUT):
            await lock.acquire()
    except TimeoutError:
        raise DatabaseUnavailableError(
            f"no turn to write within {WRITE_QUEUE_TIMEOUT:.0f} s", url=url
        ) from None
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            lock.release()

    def on_end(_session: Any, transaction: Any) -> None:
        if transaction.parent is None:  # the outermost one: the database's transaction
            release()

    event.listen(session.sync_session, "after_transaction_end", on_end)
    try:
        yield
    finally:
        event.remove(session.sync_session, "after_transaction_end", on_end)
        release()
