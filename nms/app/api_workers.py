"""``nms api --workers N``: N processes serving the case API on one address.

The parent binds the address (a busy port fails at once, as with one process),
creates the default secret key file if needed, migrates the database and seals
stored secrets once, in the background as ``nms api`` does alone, and starts N
workers. It serves nothing itself.

Workers are spawned (``python -m nms.app.api_workers``), not forked: the parent has
an event loop (signals, the migration, watching its children) and a database engine,
and restarts a worker at any time later; a fork would copy those into the child. A
spawned worker builds its own engine, pool and loop. It inherits the listening
socket (``pass_fds``) and reads its ``WorkerSpec`` (the parent's effective settings,
its number, the metrics directory) as a pickle from a pipe on its stdin; the pipe
stays open, and its end (the parent gone, even by ``kill -9``) stops the worker. The
kernel hands each connection to one of the workers blocked in ``accept``.

Supervision: SIGTERM / SIGINT go to the parent only (each worker is in a process
group of its own, so a terminal's Ctrl-C does not reach it directly); the parent
forwards SIGTERM, waits ``STOP_GRACE`` seconds, kills what is left, and exits 0 if
every worker stopped cleanly. A worker that ends unexpectedly is logged with its pid
and exit code or signal and restarted; more than ``RESTART_LIMIT`` restarts within
``RESTART_WINDOW`` seconds (all workers together) stop everything with exit 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from caseapi.database import make_engine, make_sessionmaker
from caseapi.secrets import SecretBox
from nms.app.process import (
    StopRequestedError,
    listen_socket,
    remove_signal_handlers,
    stop_event,
    until_stopped,
)
from nms.app.settings import Settings
from nms.app.wiring import migrate_until_done, seal_stored_secrets, secret_box
from nms.errors import ApiWorkersError

log = logging.getLogger("nms.distributed")

#: Seconds the workers get to finish after SIGTERM before they are killed.
STOP_GRACE = 10.0
#: Restarts allowed within ``RESTART_WINDOW`` seconds, all workers together.
RESTART_LIMIT = 5
RESTART_WINDOW = 60.0
#: Seconds between a worker's end and its restart.
RESTART_DELAY = 0.5


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker is told by its parent (pickled through the pipe on its stdin)."""

    settings: Settings
    number: int
    listen_fd: int
    metrics_dir: Path
    #: ``nms run``'s metrics (a Unix socket): a worker of ``nms run`` answers /metrics
    #: with that page (probes, detector, cases; the workers' sums among them).
    metrics_from: Path | None = None


class CrashGuard:
    """At most ``limit`` restarts within ``window`` seconds: ``allow(now)`` says
    whether one more may happen now (and counts it if so)."""

    def __init__(self, limit: int, window: float) -> None:
        self._limit = limit
        self._window = window
        self._restarts: deque[float] = deque()

    def allow(self, now: float) -> bool:
        while self._restarts and now - self._restarts[0] >= self._window:
            self._restarts.popleft()
        if len(self._restarts) >= self._limit:
            return False
        self._restarts.append(now)
        return True


def describe_exit(returncode: int) -> str:
    """``exit code 3`` or ``killed by SIGKILL``, from a ``returncode``."""
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        return f"killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"killed by signal {-returncode}"


def encode_spec(spec: WorkerSpec) -> bytes:
    data = pickle.dumps(spec)
    return len(data).to_bytes(8, "big") + data


def read_spec(fd: int) -> WorkerSpec | None:
    """The spec the parent wrote on ``fd``; None if the pipe closed before it all came."""

    def exactly(n: int) -> bytes | None:
        chunks = bytearray()
        while len(chunks) < n:
            chunk = os.read(fd, n - len(chunks))
            if not chunk:
                return None
            chunks += chunk
        return bytes(chunks)

    size = exactly(8)
    data = None if size is None else exactly(int.from_bytes(size, "big"))
    if data is None:
        return None
    spec = pickle.loads(data)  # our own parent, over a private pipe
    assert isinstance(spec, WorkerSpec)
    return spec


class WorkerPool:
    """Starts, watches, restarts and stops the worker processes."""

    def __init__(
        self,
        settings: Settings,
        listener: socket.socket,
        metrics_dir: Path,
        *,
        metrics_from: Path | None = None,
    ) -> None:
        self._settings = settings
        self._listener = listener
        self._metrics_dir = metrics_dir
        self._metrics_from = metrics_from
        self._guard = CrashGuard(RESTART_LIMIT, RESTART_WINDOW)
        self._running: dict[int, asyncio.subprocess.Process] = {}
        self._stopping = False

    async def _start(self, number: int) -> asyncio.subprocess.Process:
        fd = self._listener.fileno()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "nms.app.api_workers",
            stdin=asyncio.subprocess.PIPE,
            pass_fds=(fd,),
            # A process group of its own (uvloop takes start_new_session, not
            # process_group): a terminal's Ctrl-C reaches the parent only.
            start_new_session=True,
        )
        self._running[number] = proc
        assert proc.stdin is not None
        spec = WorkerSpec(self._settings, number, fd, self._metrics_dir, self._metrics_from)
        proc.stdin.write(encode_spec(spec))
        await proc.stdin.drain()
        log.info("API worker %d started (pid %d)", number, proc.pid)
        return proc

    async def keep(self, number: int) -> None:
        """Run worker ``number``, restarting it whenever it ends unasked.

        Raises:
            ApiWorkersError: Too many restarts (of all workers) within the window.
        """
        while True:
            proc = await self._start(number)
            returncode = await proc.wait()
            if self._stopping:
                return
            _close_pipe(proc)
            log.error(
                "API worker %d (pid %d) ended unexpectedly: %s",
                number,
                proc.pid,
                describe_exit(returncode),
            )
            if not self._guard.allow(time.monotonic()):
                raise ApiWorkersError(
                    [
                        f"API worker {number} (pid {proc.pid}) ended: "
                        f"{describe_exit(returncode)}; more than {RESTART_LIMIT} restarts "
                        f"within {RESTART_WINDOW:.0f} s, so every worker was stopped"
                    ]
                )
            await asyncio.sleep(RESTART_DELAY)
            log.info("restarting API worker %d", number)

    async def stop_all(self, grace: float) -> list[str]:
        """SIGTERM to every worker, SIGKILL after ``grace`` seconds; what did not stop
        cleanly (empty: all did)."""
        self._stopping = True
        procs = list(self._running.items())
        for _, proc in procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        problems: list[str] = []
        deadline = time.monotonic() + grace
        for number, proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
                problems.append(
                    f"API worker {number} (pid {proc.pid}) did not stop within "
                    f"{grace:.0f} s and was killed"
                )
            else:
                # -SIGTERM: it was still starting (no handler yet); stopped as asked.
                if proc.returncode not in (0, -signal.SIGTERM):
                    problems.append(
                        f"API worker {number} (pid {proc.pid}) ended: "
                        f"{describe_exit(proc.returncode or 0)}"
                    )
            _close_pipe(proc)
        return problems


def _close_pipe(proc: asyncio.subprocess.Process) -> None:
    if proc.stdin is not None:
        proc.stdin.close()


async def supervise(settings: Settings) -> None:
    """Serve the case API from ``settings.api.workers`` worker processes until SIGTERM /
    SIGINT.

    Raises:
        ListenError: The address cannot be bound.
        ApiWorkersError: Workers kept failing, or did not stop cleanly.
    """
    box = secret_box(settings)  # creates the default key file, once, before the workers
    listener = listen_socket(settings.api.listen)
    warn_per_worker_limits(settings)
    metrics_dir = Path(tempfile.mkdtemp(prefix="nms-api-metrics-"))
    pool = WorkerPool(settings, listener, metrics_dir)
    stop = stop_event()
    log.info(
        "API on http://%s, %d workers (their counters in %s)",
        settings.api.listen,
        settings.api.workers,
        metrics_dir,
    )
    problems: list[str] = []
    try:
        try:
            async with asyncio.TaskGroup() as tasks:
                # Once, here: workers never migrate. They answer meanwhile, as one
                # process does (503 + Retry-After while the database is unreachable).
                tasks.create_task(_prepare(settings, box), name="migrate")
                for number in range(1, settings.api.workers + 1):
                    tasks.create_task(pool.keep(number), name=f"worker-{number}")
                tasks.create_task(until_stopped(stop), name="stop")
        except* StopRequestedError:
            pass
    finally:
        problems = await pool.stop_all(STOP_GRACE)
        remove_signal_handlers()
        listener.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    if problems:
        raise ApiWorkersError(problems)
    log.info("stopped cleanly")


def warn_per_worker_limits(settings: Settings) -> None:
    """Say so when each worker will keep its own rate limits (in memory)."""
    if settings.api.rate_limits.storage_url.startswith("memory:"):
        log.warning(
            "api.workers is %d without api.rate_limits.storage_url: each worker keeps "
            "its own rate limits, so a client may get up to %d times each limit",
            settings.api.workers,
            settings.api.workers,
        )


async def _prepare(settings: Settings, box: SecretBox | None) -> None:
    engine = make_engine(settings.database.url)
    try:
        await migrate_until_done(engine)
        await seal_stored_secrets(make_sessionmaker(engine), box)
    finally:
        await engine.dispose()


def worker_main() -> int:
    """A worker process: serve on the inherited socket until told to stop."""
    from nms.app import loop
    from nms.app.api import PARENT_PIPE_FD, serve_api
    from nms.app.cli import setup_logging
    from nms.app.secrets import settings_box
    from nms.clock import SystemClock

    spec = read_spec(PARENT_PIPE_FD)
    if spec is None:
        return 1  # the parent went away before it said what to do
    setup_logging(spec.settings.log.level, tag=f"worker {spec.number}")
    loop.tune_collector(spec.settings.runtime.gc_threshold)
    listener = socket.socket(fileno=spec.listen_fd)
    # The parent created the default key file if due, and said so: open, create nothing.
    box = settings_box(spec.settings)
    serving = serve_api(spec.settings, listener, clock=SystemClock(), box=box, worker=spec)
    loop.run(serving, event_loop=spec.settings.runtime.event_loop)
    return 0


if __name__ == "__main__":
    # Under its own name, not __main__: the spec's classes are pickled by that name.
    from nms.app import api_workers

    sys.exit(api_workers.worker_main())
