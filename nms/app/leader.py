"""Leader election for ``nms detector``: one active detector, any number of standbys.

PostgreSQL: the leader holds a session-level advisory lock (``pg_try_advisory_lock``)
on a dedicated asyncpg connection, not a pooled SQLAlchemy one: the lock lives
exactly as long as that session, so a crashed or killed leader frees it the moment
the server sees the connection close. A standby keeps its own connection and retries
the lock every ``check`` seconds.

A leader that cannot reach the server must step down before a standby can take
over, or two detectors would open cases at once. Both sides get a deadline:

- the leader runs ``SELECT 1`` every ``check`` seconds, bounded by ``timeout``;
  a failure, a timeout or a closed connection ends ``watch()`` (step down);
- the server ends the lock session after ``idle_session_timeout`` =
  2 x (check + timeout) without a query (PostgreSQL 14+), which frees the lock
  for a standby. The leader has stepped down by then: its last answered check
  was at most ``check + timeout`` earlier, plus at most ``timeout`` of travel.
  Without it a half-open connection (a partition, a stuck proxy) keeps the lock
  until the server's TCP keepalive gives up, which is two hours by default.

So do the leader's work concurrently with ``watch()``, started right after
``acquire()``: a session with no check query for that long is ended by the server.
The URL must reach PostgreSQL directly or through session pooling; a
transaction-pooling proxy (PgBouncer ``pool_mode=transaction``) breaks
session-level locks.

SQLite (one host only): an exclusive ``fcntl.flock`` on ``<database file>.leader``.
The kernel drops it when the process dies, and it cannot be lost while the
process lives, so ``watch()`` only waits.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import inspect
import logging
import os
import random
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final, Protocol

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from caseapi.database import DatabaseConfigError, mask_url

log = logging.getLogger("nms.leader")

#: SQLAlchemy's own connection options, not asyncpg's (see its asyncpg dialect).
_SQLALCHEMY_ONLY_OPTIONS: Final = ("prepared_statement_cache_size", "prepared_statement_name_func")


def lock_key(name: str) -> int:
    """Return the advisory lock key of ``name``: a stable signed 64-bit integer.

    Derived from SHA-256 so every process and every Python version agrees on it
    (``hash()`` is salted per process).
    """
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class _UnavailableError(Exception):
    """The lock cannot be tried right now; the message says why (for the log)."""


class _Connection(Protocol):
    """The part of ``asyncpg.Connection`` used here (asyncpg ships no types)."""

    async def fetchval(self, query: str, *args: object) -> object: ...

    async def execute(self, query: str, *args: object) -> str: ...

    async def close(self) -> None: ...

    def terminate(self) -> None: ...

    def is_closed(self) -> bool: ...

    def get_server_version(self) -> Any: ...

    def add_termination_listener(self, callback: Callable[[Any], None]) -> None: ...

    def remove_termination_listener(self, callback: Callable[[Any], None]) -> None: ...


class _Backend(Protocol):
    async def try_lock(self) -> bool: ...

    async def watch(self) -> str: ...

    async def release(self, *, leader: bool) -> None: ...

    def drop(self) -> None: ...


class LeaderLock:
    """Leadership for ``nms detector``, by PostgreSQL advisory lock or SQLite file lock.

    Usage::

        async with LeaderLock(url) as lock:
            while True:
                await lock.acquire()          # waits while another detector leads
                async with asyncio.TaskGroup() as tg:
                    work = tg.create_task(run_detector())
                    await lock.watch()        # returns when leadership is lost
                    work.cancel()

    ``acquire()`` and ``watch()`` give up the connection (or file lock) when
    cancelled: a leader whose lock nobody watches could lose it unnoticed. One
    instance runs one ``acquire()`` or ``watch()`` at a time; cancel it before
    calling ``release()`` from another task.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str = "nms-detector",
        check: float = 1.0,
        timeout: float = 3.0,
        retry_cap: float = 10.0,
    ) -> None:
        """Prepare the lock; nothing connects until ``acquire()``.

        Args:
            url: ``postgresql+asyncpg://...`` or ``sqlite+aiosqlite:///path/to/file.db``.
            name: The lock's name; processes using the same name compete.
            check: Seconds between lock checks of the leader and lock tries of a standby.
            timeout: Seconds a connection attempt or check query may take.
            retry_cap: The longest wait between attempts while the database is unreachable.

        Raises:
            ValueError: A non-positive duration or an empty name.
            DatabaseConfigError: The URL is malformed or names an unsupported driver.
        """
        if not name:
            raise ValueError("the lock name must not be empty")
        if check <= 0 or timeout <= 0 or retry_cap <= 0:
            raise ValueError("check, timeout and retry_cap must be positive")
        self.name = name
        self._check = check
        self._retry_cap = retry_cap
        self._where = mask_url(url)
        parsed = _parse(url)
        self._backend: _Backend
        if parsed.get_backend_name() == "sqlite":
            self._backend = _FileLock(_lock_file(parsed, url))
        else:
            self._backend = _PgLock(parsed, url, key=lock_key(name), check=check, timeout=timeout)
        self._leader = False
        self._busy = False
        self._state = ""

    @property
    def is_leader(self) -> bool:
        """Whether this instance holds the lock (as of its last check)."""
        return self._leader

    async def acquire(self) -> None:
        """Return once this instance holds the lock; never raises for an unreachable database.

        Tries every ``check`` seconds while another process holds the lock. When the
        database cannot be used (refused, timeout, DNS, authentication, no such
        database) it logs one line per change of state and retries with jittered
        exponential backoff from ``check`` up to ``retry_cap`` seconds.
        """
        if self._leader:
            return
        self._start()
        failures = 0
        try:
            while True:
                try:
                    got = await self._backend.try_lock()
                except _UnavailableError as exc:
                    self._enter(
                        f"unavailable: {exc}",
                        logging.WARNING,
                        "leader election: cannot use the database %s: %s; "
                        "retrying with backoff up to %gs",
                        self._where,
                        exc,
                        self._retry_cap,
                    )
                    delay = min(self._retry_cap, self._check * 2.0**failures)
                    delay *= random.uniform(0.8, 1.0)  # jitter: standbys do not retry in step
                    failures = min(failures + 1, 32)
                    log.debug("leader election: next attempt in %.2fs", delay)
                    await asyncio.sleep(delay)
                    continue
                failures = 0
                if got:
                    self._leader = True
                    self._enter("leader", logging.INFO, "leading (lock %r)", self.name)
                    return
                self._enter(
                    "standby",
                    logging.INFO,
                    "another detector leads; standing by (lock %r, retry every %gs)",
                    self.name,
                    self._check,
                )
                await asyncio.sleep(self._check)
        except BaseException:
            # Cancelled (or a bug): leave no half-open connection behind.
            self._backend.drop()
            raise
        finally:
            self._busy = False

    async def watch(self) -> None:
        """Return when leadership is lost; the lock is given up by then.

        Lost means: the lock connection closed, or a check query (``SELECT 1``
        every ``check`` seconds) failed or got no answer within ``timeout``.
        Afterwards ``is_leader`` is false and ``acquire()`` may be called again.

        Raises:
            RuntimeError: This instance is not the leader.
        """
        if not self._leader:
            raise RuntimeError("watch() needs leadership: call acquire() first")
        self._start()
        try:
            reason = await self._backend.watch()
        finally:
            self._leader = False
            self._backend.drop()
            self._busy = False
        self._enter("lost", logging.WARNING, "lost leadership (lock %r): %s", self.name, reason)

    async def release(self) -> None:
        """Give up the lock and close the connection; safe to call at any time, repeatedly."""
        leader, self._leader = self._leader, False
        try:
            await self._backend.release(leader=leader)
        finally:
            self._backend.drop()
        if leader:
            self._enter("released", logging.INFO, "released leadership (lock %r)", self.name)
        self._state = ""

    async def __aenter__(self) -> LeaderLock:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.release()

    def _start(self) -> None:
        if self._busy:
            raise RuntimeError("acquire() or watch() is already running on this LeaderLock")
        self._busy = True

    def _enter(self, state: str, level: int, message: str, *args: object) -> None:
        # One log line per change of state, not one per attempt.
        if state != self._state:
            self._state = state
            log.log(level, message, *args)


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise DatabaseConfigError(f"malformed database URL: {exc}", url=url) from exc
    if parsed.get_backend_name() != "sqlite" and parsed.drivername != "postgresql+asyncpg":
        raise DatabaseConfigError(
            f"leader election needs postgresql+asyncpg or sqlite, not {parsed.drivername!r}",
            url=url,
        )
    return parsed


def _lock_file(parsed: URL, url: str) -> str:
    if parsed.database in (None, "", ":memory:"):
        raise DatabaseConfigError(
            "leader election on SQLite needs a database file, not an in-memory database",
            url=url,
        )
    return f"{parsed.database}.leader"


def _describe(exc: BaseException) -> str:
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


class _PgLock:
    """The advisory lock on one asyncpg connection, kept between a standby's tries.

    Database errors are caught as ``Exception``: refused, reset and DNS errors are
    OSError, bad credentials and a missing database PostgresError, a closed
    connection InterfaceError, and a query racing the server's "terminating
    connection" message InternalClientError, which derives from Exception only.
    Losing the database must never end the process; the error's text is logged.
    """

    def __init__(self, parsed: URL, url: str, *, key: int, check: float, timeout: float) -> None:
        try:
            _, options = parsed.get_dialect()().create_connect_args(parsed)
        except (ArgumentError, ValueError) as exc:
            raise DatabaseConfigError(f"cannot use database URL: {exc}", url=url) from exc
        for option in _SQLALCHEMY_ONLY_OPTIONS:
            options.pop(option, None)
        options["server_settings"] = {"application_name": "nms leader lock"}
        try:
            inspect.signature(asyncpg.connect).bind(**options)
        except TypeError as exc:
            raise DatabaseConfigError(f"unsupported connection option: {exc}", url=url) from exc
        self._options = dict(options)
        self._key = key
        self._check = check
        self._timeout = timeout
        self._idle_ms = int(2000 * (check + timeout)) + 1
        self._conn: _Connection | None = None

    async def try_lock(self) -> bool:
        if self._conn is None or self._conn.is_closed():
            self.drop()
            self._conn = await self._connect()
        try:
            async with asyncio.timeout(self._timeout):
                got = await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self._key)
        except TimeoutError:
            self.drop()
            raise _UnavailableError(f"no answer within {self._timeout:g}s") from None
        except Exception as exc:
            self.drop()
            raise _UnavailableError(_describe(exc)) from exc
        return got is True

    async def _connect(self) -> _Connection:
        conn: _Connection | None = None
        try:
            async with asyncio.timeout(self._timeout):
                conn = await asyncpg.connect(**self._options)
                if conn.get_server_version().major >= 14:
                    # See the module docstring: frees the lock of a vanished leader.
                    await conn.execute(f"SET idle_session_timeout = {self._idle_ms}")
        except BaseException as exc:
            if conn is not None:
                conn.terminate()
            if isinstance(exc, TimeoutError):
                raise _UnavailableError(f"no connection within {self._timeout:g}s") from None
            if isinstance(exc, Exception):
                raise _UnavailableError(_describe(exc)) from exc
            raise
        return conn

    async def watch(self) -> str:
        conn = self._conn
        if conn is None or conn.is_closed():
            return "the lock connection is closed"
        closed = asyncio.Event()

        def on_close(_conn: object) -> None:
            closed.set()

        conn.add_termination_listener(on_close)
        try:
            while True:
                try:
                    async with asyncio.timeout(self._check):
                        await closed.wait()
                except TimeoutError:
                    pass
                if closed.is_set() or conn.is_closed():
                    return "the lock connection closed"
                try:
                    async with asyncio.timeout(self._timeout):
                        await conn.fetchval("SELECT 1")
                except TimeoutError:
                    return f"the check query got no answer within {self._timeout:g}s"
                except Exception as exc:
                    return f"the check query failed: {_describe(exc)}"
        finally:
            conn.remove_termination_listener(on_close)

    async def release(self, *, leader: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if not conn.is_closed():
                async with asyncio.timeout(self._timeout):
                    if leader:
                        await conn.execute("SELECT pg_advisory_unlock($1)", self._key)
                    await conn.close()
        except Exception as exc:
            # Closing the session releases the lock anyway.
            log.debug("leader lock: closing uncleanly: %s", _describe(exc))
        finally:
            if not conn.is_closed():
                conn.terminate()

    def drop(self) -> None:
        """Close the connection at once, without waiting (safe while being cancelled)."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()


class _FileLock:
    """An exclusive ``flock`` on a file next to the SQLite database."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd: int | None = None

    async def try_lock(self) -> bool:
        if self._fd is not None:
            return True
        try:
            # Owner only, like the database: a flock needs no write access, so a
            # lock file others can read lets any local user hold the lock.
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise _UnavailableError(f"cannot open lock file {self._path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except OSError as exc:
            os.close(fd)
            raise _UnavailableError(f"cannot lock {self._path}: {exc}") from exc
        self._fd = fd
        return True

    async def watch(self) -> str:
        # A flock is lost only with the process; wait until cancelled.
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def release(self, *, leader: bool) -> None:
        self.drop()

    def drop(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            # Closing the descriptor releases the lock; the file stays (deleting it
            # would race with a process that has just opened it).
            os.close(fd)
