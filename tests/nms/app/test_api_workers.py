"""``nms api --workers 2`` as real processes on a real PostgreSQL database: both
workers serve one address, /metrics sums their counters, a killed worker is restarted,
SIGTERM stops everything with exit 0, and ``kill -9`` of the parent leaves no worker."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from nms.app import api_workers
from nms.app.api_workers import CrashGuard, WorkerPool, describe_exit
from nms.app.settings import Settings
from nms.errors import ApiWorkersError
from nms.lab.procs import kill_process, stop_process
from tests.conftest import require
from tests.distributed.cluster import create_database, drop_database
from tests.nms.nms_process import free_port, wait_for

BAD_KEY = {"Authorization": "Bearer nms_" + "x" * 43}
SERVING = re.compile(r"\[worker (\d+)\] nms\.distributed: worker \d+ \(pid (\d+)\) serving")


@pytest.fixture
def database() -> Iterator[str]:
    """A new, empty PostgreSQL database (``nms api`` migrates it)."""
    name = f"nms_api_workers_{os.getpid()}"
    try:
        url = create_database(name)
    except (OSError, Exception) as exc:
        require(False, f"PostgreSQL unavailable: {exc}")
    yield url
    drop_database(name)


@dataclass
class Api:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def serving(self) -> dict[int, int]:
        """Worker number -> pid of its latest ``serving`` line."""
        return {int(n): int(pid) for n, pid in SERVING.findall(self.text())}


@pytest.fixture
def api(database: str, tmp_path: Path) -> Iterator[Api]:
    port = free_port()
    log = tmp_path / "api.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NMS_")}
    env["NMS_API__RATE_LIMITS__AUTH_FAILURES_PER_ADDRESS"] = "2/minute"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "nms.app.cli", "api", "--workers", "2",
                "--database", database, "--listen", f"127.0.0.1:{port}",
            ],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
        )  # fmt: skip
    running = Api(proc, port, log)
    try:

        def started() -> bool:
            assert proc.poll() is None, running.text()
            return len(running.serving()) == 2

        wait_for("both workers serving", started, timeout=60)
        yield running
    finally:
        stop_process(proc, timeout=15)
        for pid in running.serving().values():
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (its parent gone or not reaping yet) has stopped serving.
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rpartition(")")[2].split()[0] != "Z"


def _server_side_owner(conn: http.client.HTTPConnection, pids: set[int]) -> int | None:
    """The pid (of ``pids``) holding the server's end of ``conn``, from /proc."""
    assert conn.sock is not None
    client_port = conn.sock.getsockname()[1]
    server_port = conn.sock.getpeername()[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if (
            int(local.split(":")[1], 16) == server_port
            and int(remote.split(":")[1], 16) == client_port
        ):
            inode = fields[9]
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


def _get(conn: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> int:
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.read()
    return response.status


def _one_connection_per_worker(api: Api) -> dict[int, http.client.HTTPConnection]:
    """Keep-alive connections until each worker holds one (the kernel picks)."""
    pids = set(api.serving().values())
    found: dict[int, http.client.HTTPConnection] = {}
    spare: list[http.client.HTTPConnection] = []
    deadline = time.monotonic() + 20
    while len(found) < len(pids) and time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
        assert _get(conn, "/healthz", {}) == 200
        owner = _server_side_owner(conn, pids)
        if owner is not None and owner not in found:
            found[owner] = conn
        else:
            spare.append(conn)
    for conn in spare:
        conn.close()
    assert len(found) == len(pids), f"connections reached only {sorted(found)} of {pids}"
    return found


def _metrics(api: Api) -> dict[str, float]:
    """Each family of a scrape of /metrics, its samples summed."""
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        page = conn.getresponse().read().decode()
    finally:
        conn.close()
    return {
        family.name: sum(sample.value for sample in family.samples)
        for family in text_string_to_metric_families(page)
    }


def _rate_limited(api: Api) -> float:
    return _metrics(api)["nms_api_rate_limited"]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _memory_of_live_workers(api: Api) -> bool:
    """/metrics's RSS is the sum of the serving workers' (within 10 %)."""
    rss = sum(_rss(pid) for pid in api.serving().values())
    return abs(_metrics(api)["process_resident_memory_bytes"] - rss) <= 0.1 * rss


def test_two_workers_serve_sum_their_metrics_restart_and_stop_cleanly(api: Api) -> None:
    # Both serve: a connection held by each; each limits on its own (in memory).
    per_worker = _one_connection_per_worker(api)
    for conn in per_worker.values():
        statuses = [_get(conn, "/v1/cases", BAD_KEY) for _ in range(4)]
        assert statuses == [401, 401, 429, 429]
        conn.close()
    # /metrics, whichever worker answers, sums both: 2 + 2; and stays there.
    wait_for("the summed 429 count", lambda: _rate_limited(api) == 4, timeout=10)
    assert [_rate_limited(api) for _ in range(6)] == [4] * 6
    # CPU, memory and garbage collections: the workers' sums as well (one worker's
    # would jump from one to the other between scrapes). The other worker's figures
    # are up to a second old; idle, it uses little CPU in a second.
    pids = list(api.serving().values())
    cpu_before = sum(_cpu_seconds(pid) for pid in pids)
    scraped = _metrics(api)
    cpu_after = sum(_cpu_seconds(pid) for pid in pids)
    assert cpu_before - 0.3 <= scraped["process_cpu_seconds"] <= cpu_after + 0.05
    assert scraped["process_cpu_seconds"] > max(_cpu_seconds(pid) for pid in pids)
    assert _memory_of_live_workers(api)
    assert scraped["nms_gc_collections"] > 0

    # A worker killed is logged with its pid and signal, and restarted.
    number, pid = sorted(api.serving().items())[0]
    os.kill(pid, signal.SIGKILL)
    wait_for(
        "the restarted worker",
        lambda: api.serving().get(number, pid) != pid,
        timeout=60,
    )
    assert f"API worker {number} (pid {pid}) ended unexpectedly: killed by SIGKILL" in api.text()
    # Its counts published before it died still count: no counter goes back; its
    # memory stops counting once its file is LIVE_WITHIN seconds old.
    assert [_rate_limited(api) for _ in range(4)] == [4] * 4
    assert _metrics(api)["process_cpu_seconds"] >= scraped["process_cpu_seconds"]
    wait_for("the live workers' memory", lambda: _memory_of_live_workers(api), timeout=15)

    # SIGTERM: every worker stops cleanly, then the parent, with exit 0.
    workers = list(api.serving().values())
    api.proc.send_signal(signal.SIGTERM)
    assert api.proc.wait(timeout=20) == 0, api.text()
    assert not [p for p in workers if _alive(p)]
    assert api.text().count("[worker") >= 2
    # Workers run on the configured loop (the default, uvloop), as one process does.
    assert "[worker 1] nms.runtime: event loop: uvloop" in api.text()
    assert "[worker 2] nms.runtime: event loop: uvloop" in api.text()
    assert api.text().rstrip().endswith("nms.distributed: stopped cleanly")


def test_kill_9_of_the_parent_leaves_no_worker(api: Api) -> None:
    workers = list(api.serving().values())
    counters = re.search(r"their counters in (\S+)\)", api.text())
    assert counters is not None
    kill_process(api.proc)
    wait_for("no worker left", lambda: not [p for p in workers if _alive(p)], timeout=15)
    assert "the supervising process is gone; stopping" in api.text()
    assert not Path(counters.group(1)).exists()  # nor their shared counters


def test_crash_guard_allows_a_few_restarts_per_window() -> None:
    guard = CrashGuard(limit=2, window=60)
    assert [guard.allow(t) for t in (0, 1, 2)] == [True, True, False]
    assert guard.allow(60.5)  # the first one (at 0) left the window
    assert not guard.allow(60.9)  # those at 1 and 60.5 are still in it


def test_exits_are_described_with_code_or_signal() -> None:
    assert describe_exit(3) == "exit code 3"
    assert describe_exit(-9) == "killed by SIGKILL"


class _CrashingWorker:
    """Stands in for a worker process that ends with exit code 1 as soon as started."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.stdin = None

    async def wait(self) -> int:
        self.returncode = 1
        return 1


async def test_a_crash_loop_stops_every_worker(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    started: list[int] = []

    async def start(self: WorkerPool, number: int) -> _CrashingWorker:
        started.append(number)
        return _CrashingWorker(1000 + len(started))

    monkeypatch.setattr(WorkerPool, "_start", start)
    monkeypatch.setattr(api_workers, "RESTART_DELAY", 0.0)
    with socket.socket() as listener, pytest.raises(ApiWorkersError) as raised:
        await WorkerPool(Settings(), listener, tmp_path).keep(2)
    # The first start and RESTART_LIMIT restarts, then no more.
    assert started == [2] * (api_workers.RESTART_LIMIT + 1)
    assert "API worker 2 (pid 1001) ended unexpectedly: exit code 1" in caplog.text
    assert raised.value.problems == [
        "API worker 2 (pid 1006) ended: exit code 1; more than 5 restarts within 60 s, "
        "so every worker was stopped"
    ]
