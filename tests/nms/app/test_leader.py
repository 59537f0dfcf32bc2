"""Leader election against the machine's PostgreSQL (and a SQLite lock file).

Failures are real: a backend killed with ``pg_terminate_backend``, a leader process
killed with SIGKILL, a closed port, and a TCP proxy in the test that stops
forwarding without closing (a stuck middlebox or a partition).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, TypeVar
from uuid import uuid4

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.engine import make_url

from caseapi.core.errors import DatabaseConfigError
from nms.app.leader import LeaderLock, lock_key
from tests.conftest import require

PG_URL = os.environ.get("NMS_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parents[3]
T = TypeVar("T")

# Short periods keep the file fast; the bounds below are in these units.
CHECK = 0.2
TIMEOUT = 0.5
SLACK = 0.5


def _pg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_port() -> int:
    return make_url(PG_URL).port or 5432


def _with_port(url: str, port: int) -> str:
    return make_url(url).set(host="127.0.0.1", port=port).render_as_string(hide_password=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _name() -> str:
    # Unique per test: other test runs may share the server.
    return f"test-leader-{uuid4().hex}"


async def _within(seconds: float, awaitable: Awaitable[T]) -> tuple[T, float]:
    """Await ``awaitable`` with a deadline; return its result and the time it took."""
    start = time.monotonic()
    async with asyncio.timeout(seconds):
        result = await awaitable
    return result, time.monotonic() - start


async def _stop(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.fixture
async def admin() -> AsyncIterator[Any]:
    """A plain asyncpg connection to the test server (skips if there is none)."""
    try:
        conn = await asyncpg.connect(_pg_dsn(PG_URL), timeout=3)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        require(False, f"PostgreSQL unavailable: {exc}")
        raise  # unreachable: require() skips or fails
    try:
        yield conn
    finally:
        await conn.close()


async def _leader_pid(admin: Any, name: str) -> int | None:
    # A bigint advisory key shows in pg_locks as classid (high half) and objid (low half).
    key = lock_key(name) & 0xFFFF_FFFF_FFFF_FFFF
    pid: int | None = await admin.fetchval(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND classid = $1 AND objid = $2 AND objsubid = 1",
        key >> 32,
        key & 0xFFFF_FFFF,
    )
    return pid


class Proxy:
    """A TCP proxy to PostgreSQL that can stop forwarding without closing anything."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._forwarding = asyncio.Event()
        self._forwarding.set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._pumps: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0
        self.open = 0  # client connections currently open
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def wait_idle(self) -> None:
        """Return once no client connection is open."""
        await self._idle.wait()

    def freeze(self) -> None:
        self._forwarding.clear()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        # Stop the pumps, not the handlers: a cancelled connection handler makes
        # asyncio log an error (streams.py calls task.exception() on it).
        while self._handlers:  # a handler may be opening its upstream connection
            for pump in list(self._pumps):
                pump.cancel()
            await asyncio.wait(self._handlers, timeout=0.05)
        if self._server is not None:
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.open += 1
        self._idle.clear()
        writers = [writer]
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target_port)
            except OSError:
                return
            writers.append(up_writer)
            pumps = {
                asyncio.create_task(self._pump(reader, up_writer)),
                asyncio.create_task(self._pump(up_reader, writer)),
            }
            self._pumps |= pumps
            try:
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self._pumps -= pumps
                for pump in pumps:
                    await _stop(pump)
        finally:
            self.open -= 1
            if self.open == 0:
                self._idle.set()
            self._handlers.discard(task)
            for each in writers:
                each.close()
                with contextlib.suppress(OSError):
                    await each.wait_closed()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):  # reset by a peer: this direction is done
            while data := await reader.read(65536):
                await self._forwarding.wait()  # frozen: hold the bytes, keep the sockets open
                writer.write(data)
                await writer.drain()


@pytest.fixture
async def proxy(admin: Any) -> AsyncIterator[Proxy]:
    proxy = Proxy(_pg_port())
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


# --- pure parts ---------------------------------------------------------------------------


def test_lock_key_is_a_stable_signed_int64() -> None:
    assert lock_key("nms-detector") == -2202095001740050213  # must never change
    assert lock_key("a") != lock_key("b")
    assert all(-(2**63) <= lock_key(name) < 2**63 for name in ("a", "b", "nms-detector"))


@pytest.mark.parametrize(
    "url",
    [
        "mysql+aiomysql://u@h/db",
        "postgresql+psycopg://u@h/db",
        "sqlite+aiosqlite://",
        "sqlite+aiosqlite:///:memory:",
        "postgresql+asyncpg://u@127.0.0.1/db?no_such_option=1",
        "not a url",
    ],
)
def test_unusable_urls_are_config_errors(url: str) -> None:
    with pytest.raises(DatabaseConfigError):
        LeaderLock(url)


@pytest.mark.parametrize("option", ["check", "timeout", "retry_cap"])
def test_durations_must_be_positive(option: str) -> None:
    durations: dict[str, Any] = {option: 0.0}
    with pytest.raises(ValueError, match="positive"):
        LeaderLock(PG_URL, **durations)


async def test_watch_needs_leadership_and_release_is_idempotent(tmp_path: Path) -> None:
    lock = LeaderLock(f"sqlite+aiosqlite:///{tmp_path / 'nms.db'}")
    with pytest.raises(RuntimeError, match="acquire"):
        await lock.watch()
    await lock.release()
    await lock.release()
    assert not lock.is_leader


# --- SQLite -------------------------------------------------------------------------------


async def test_sqlite_one_leader_then_the_other(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'nms.db'}"
    async with LeaderLock(url, check=0.05) as a, LeaderLock(url, check=0.05) as b:
        await _within(1, a.acquire())
        waiting = asyncio.create_task(b.acquire())
        await asyncio.sleep(0.2)
        assert a.is_leader and not b.is_leader and not waiting.done()
        assert (tmp_path / "nms.db.leader").exists()

        await a.release()
        await _within(0.05 + SLACK, waiting)
        assert b.is_leader and not a.is_leader

        # The lock cannot be lost while the process lives: watch() just waits...
        with pytest.raises(TimeoutError):
            await _within(0.2, b.watch())
        # ...and cancelling it gives leadership up.
        assert not b.is_leader
        await _within(1, a.acquire())
        assert a.is_leader


# --- PostgreSQL ---------------------------------------------------------------------------


@pytest.mark.postgres
async def test_exactly_one_leader_and_release_hands_over(admin: Any) -> None:
    name = _name()
    async with (
        LeaderLock(PG_URL, name=name, check=CHECK, timeout=TIMEOUT) as a,
        LeaderLock(PG_URL, name=name, check=CHECK, timeout=TIMEOUT) as b,
    ):
        tasks = {asyncio.create_task(a.acquire()), asyncio.create_task(b.acquire())}
        (done, pending), _ = await _within(
            5, asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        )
        await asyncio.sleep(3 * CHECK)
        assert len(done) == 1 and len(pending) == 1 and not pending.pop().done()
        assert [a.is_leader, b.is_leader].count(True) == 1
        leader, standby = (a, b) if a.is_leader else (b, a)
        assert await _leader_pid(admin, name) is not None

        await leader.release()
        await leader.release()  # idempotent
        await _within(CHECK + SLACK, asyncio.wait(tasks))
        assert standby.is_leader and not leader.is_leader


@pytest.mark.postgres
async def test_different_names_do_not_conflict(admin: Any) -> None:
    async with (
        LeaderLock(PG_URL, name=_name(), check=CHECK) as a,
        LeaderLock(PG_URL, name=_name(), check=CHECK) as b,
    ):
        await _within(5, a.acquire())
        await _within(5, b.acquire())
        assert a.is_leader and b.is_leader


@pytest.mark.postgres
async def test_terminated_backend_loses_leadership_and_the_standby_takes_over(
    admin: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nms.leader")
    name = _name()
    async with (
        LeaderLock(PG_URL, name=name, check=CHECK, timeout=TIMEOUT) as a,
        LeaderLock(PG_URL, name=name, check=CHECK, timeout=TIMEOUT) as b,
    ):
        await _within(5, a.acquire())
        standby = asyncio.create_task(b.acquire())
        watching = asyncio.create_task(a.watch())
        await asyncio.sleep(2 * CHECK)
        assert not watching.done() and not standby.done()

        pid = await _leader_pid(admin, name)
        assert pid is not None
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        await _within(TIMEOUT + CHECK + SLACK, watching)
        assert not a.is_leader
        await _within(CHECK + SLACK, standby)
        assert b.is_leader
        assert any("lost leadership" in r.getMessage() for r in caplog.records)

        # The old leader can compete again, on a fresh connection.
        again = asyncio.create_task(a.acquire())
        await b.release()
        await _within(CHECK + SLACK, again)
        assert a.is_leader and await _leader_pid(admin, name) not in (None, pid)


LEADER_PROCESS = """
import asyncio, sys
from nms.app.leader import LeaderLock

async def main() -> None:
    lock = LeaderLock(sys.argv[1], name=sys.argv[2], check=0.2)
    await lock.acquire()
    print("leading", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


@pytest.mark.postgres
async def test_killed_leader_process_frees_the_lock(admin: Any) -> None:
    name = _name()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LEADER_PROCESS,
        PG_URL,
        name,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line, _ = await _within(20, proc.stdout.readline())
        assert line == b"leading\n"
        async with LeaderLock(PG_URL, name=name, check=CHECK, timeout=TIMEOUT) as lock:
            waiting = asyncio.create_task(lock.acquire())
            await asyncio.sleep(2 * CHECK)
            assert not waiting.done()
            proc.send_signal(signal.SIGKILL)
            await _within(2, waiting)
            assert lock.is_leader
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.communicate()


@pytest.mark.postgres
async def test_frozen_connection_loses_leadership_and_the_server_frees_the_lock(
    admin: Any, proxy: Proxy
) -> None:
    name = _name()
    via_proxy = _with_port(PG_URL, proxy.port)
    async with (
        LeaderLock(via_proxy, name=name, check=CHECK, timeout=TIMEOUT) as a,
        LeaderLock(PG_URL, name=name, check=CHECK, timeout=TIMEOUT) as b,
    ):
        await _within(5, a.acquire())
        standby = asyncio.create_task(b.acquire())
        watching = asyncio.create_task(a.watch())
        await asyncio.sleep(2 * CHECK)
        assert not watching.done()

        proxy.freeze()
        _, lost_after = await _within(TIMEOUT + CHECK + SLACK, watching)
        assert not a.is_leader
        # The server ends the silent session after 2 x (check + timeout), and only
        # then may the standby lead: by that time the old leader has stepped down.
        _, taken_after = await _within(2 * (CHECK + TIMEOUT) + CHECK + SLACK, standby)
        assert b.is_leader
        assert lost_after + taken_after > 2 * (CHECK + TIMEOUT) - CHECK


@pytest.mark.postgres
async def test_cancelled_acquire_and_watch_leave_no_connection(admin: Any, proxy: Proxy) -> None:
    name = _name()
    via_proxy = _with_port(PG_URL, proxy.port)
    async with (
        LeaderLock(PG_URL, name=name, check=CHECK, timeout=TIMEOUT) as a,
        LeaderLock(via_proxy, name=name, check=CHECK, timeout=TIMEOUT) as b,
    ):
        await _within(5, a.acquire())
        standing_by = asyncio.create_task(b.acquire())
        await asyncio.sleep(2 * CHECK)
        assert proxy.open == 1
        await _stop(standing_by)
        await _within(1, proxy.wait_idle())

        # A cancelled watch() gives leadership up at once.
        await a.release()
        await _within(5, b.acquire())
        watching = asyncio.create_task(b.watch())
        await asyncio.sleep(2 * CHECK)
        await _stop(watching)
        assert not b.is_leader
        await _within(1, proxy.wait_idle())
        await _within(CHECK + SLACK, a.acquire())


async def test_unreachable_database_is_retried_with_backoff_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="nms.leader")
    port = _free_port()
    url = f"postgresql+asyncpg://postgres:hunter2@127.0.0.1:{port}/test"
    lock = LeaderLock(url, check=0.05, timeout=1.0, retry_cap=0.4)
    trying = asyncio.create_task(lock.acquire())
    await asyncio.sleep(2)
    assert not trying.done()  # no exception escaped
    await _stop(trying)
    assert not lock.is_leader

    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert f"127.0.0.1:{port}" in warnings[0] and "***" in warnings[0]
    assert "hunter2" not in warnings[0]
    assert "Connect call failed" in warnings[0] or "refused" in warnings[0].lower()
    # Backoff 0.05, 0.1, 0.2, then 0.4 s (less up to 20 % jitter): about 7 tries in 2 s.
    attempts = [r for r in caplog.records if "next attempt" in r.getMessage()]
    assert 4 <= len(attempts) <= 12


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("change", "error"),
    [({"database": "nms_no_such_database"}, "does not exist"), ({"username": "nobody"}, "nobody")],
)
async def test_missing_database_or_role_is_retried_not_raised(
    admin: Any, caplog: pytest.LogCaptureFixture, change: dict[str, Any], error: str
) -> None:
    caplog.set_level(logging.WARNING, logger="nms.leader")
    url = make_url(PG_URL).set(**change).render_as_string(hide_password=False)
    lock = LeaderLock(url, check=0.05, retry_cap=0.2)
    trying = asyncio.create_task(lock.acquire())
    await asyncio.sleep(0.6)
    assert not trying.done()
    await _stop(trying)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and error in warnings[0], warnings


@pytest.mark.postgres
async def test_database_coming_back_ends_the_wait(
    admin: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nms.leader")
    port = _free_port()
    async with LeaderLock(
        _with_port(PG_URL, port), name=_name(), check=0.05, retry_cap=0.3
    ) as lock:
        trying = asyncio.create_task(lock.acquire())
        await asyncio.sleep(0.5)
        assert not trying.done()
        proxy = Proxy(_pg_port())
        await proxy.start(port)
        try:
            await _within(0.3 + SLACK, trying)
            assert lock.is_leader
        finally:
            await lock.release()
            await proxy.close()
    messages = [r.getMessage() for r in caplog.records]
    assert [m.split(" ")[0] for m in messages] == ["leader", "leading", "released"], messages


@pytest.mark.postgres
async def test_connection_that_never_answers_times_out_and_is_retried(
    proxy: Proxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="nms.leader")
    proxy.freeze()  # connections are accepted, then nothing comes back
    lock = LeaderLock(_with_port(PG_URL, proxy.port), check=0.05, timeout=0.3, retry_cap=0.1)
    trying = asyncio.create_task(lock.acquire())
    await asyncio.sleep(1.2)
    assert not trying.done()
    await _stop(trying)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "no connection within 0.3s" in warnings[0], warnings
    assert len([r for r in caplog.records if "next attempt" in r.getMessage()]) >= 2
