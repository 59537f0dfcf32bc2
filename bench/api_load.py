"""Case API under load: ``nms run`` on SQLite and ``nms api`` on PostgreSQL, with a floor.

    python bench/api_load.py [--ntus 10000] [--cases 10000] [--duration 10]
                             [--connections 32] [--rate 500] [--hold S] [--pg-admin-url URL]
                             [--only sqlite|postgres] [--workers N[,N...]]
                             [--run-api-workers N]

SQLite: writes an inventory of ``--ntus`` loopback NTUs (``bench/inventory_file.py``),
starts ``nms run`` on it (probes on: every NTU pinged as configured by default), waits
for the inventory to reach the database, then adds ``--cases`` cases (a fifth open,
deadlines days away so the ticker stays quiet) and an engineer's API key;
``--run-api-workers N`` has ``nms run`` serve its API from N worker processes
(``api.workers``).
PostgreSQL: a database of its own (``nms_bench_api``, dropped at the end) filled like
``bench/console_pages.py`` fills one, served by ``nms api`` with ``--workers N``
processes (``api.workers``; ``--workers 1,2`` measures each count in turn on the
same database).

For each server it loads, with ``wrk`` (Debian package ``wrk``; ``scripts/setup
--dev`` installs it) and the key in the ``Authorization`` header, closed-loop with
``--connections`` connections for ``--duration`` seconds:

- ``GET /v1/cases/{ref}`` (one case), ``GET /v1/cases?limit=50``,
  ``GET /v1/ntus/{id}/status``;
- the floor: a bare FastAPI + SQLAlchemy handler (``floor_app``, served by uvicorn
  in a process of its own, as ``nms`` serves its API, on the same event loop) reading
  the same case row from the same database;

then one case at a fixed ``--rate`` for ``--hold`` seconds (wrk 4 has no fixed-rate
mode: ``open_loop`` sends on a schedule over as many keep-alive connections as it
needs and times each answer from its scheduled start, so a slow server cannot slow
the offered load); for ``nms run`` also how many ICMP cycles ran meanwhile, how many
overran their interval and how long the last one took (its ``/metrics``).

Prints req/s, p50 / p99 latency and server CPU per request (utime + stime of the
server process and its children - ``nms api``'s workers - from ``/proc/<pid>/stat``
over the window, divided by the answers; and PostgreSQL's, all its processes, whoever
else uses the server meanwhile);
for ``nms run`` also net of its idle CPU (probes, detector) measured before the load;
and our one-case GET as a ratio of the floor's CPU per request. Not a test: it
prints figures. ``--ntus`` is a flag because 10,000 pinged NTUs cost CPU of their own
on a small shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
from sqlalchemy import text

# Run as a script from anywhere: the tree's root first (for ``bench`` and ``nms``).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.console_pages import fill as fill_postgres
from bench.inventory_file import write as write_inventory
from caseapi.auth.principal import Role
from caseapi.auth.service import ApiKeyService
from caseapi.cases.enums import CasePriority, CaseSource, CaseStatus, CaseType
from caseapi.cases.models import Case
from caseapi.clock import SystemClock
from caseapi.core.database import make_engine, make_sessionmaker
from nms.app.loop import environment_loop

ROOT: Final = Path(__file__).resolve().parent.parent
CLK_TCK: Final = os.sysconf("SC_CLK_TCK")
PG_DATABASE: Final = "nms_bench_api"
#: Connections the fixed-rate client opens at most.
MAX_CONNECTIONS: Final = 128
#: ``nms`` from this tree (``PYTHONPATH`` is the tree's root).
NMS: Final = (sys.executable, "-c", "from nms.app.cli import main; main()")
OPEN: Final = (CaseStatus.NEW, CaseStatus.IN_PROGRESS, CaseStatus.WAITING_CUSTOMER)


# -- the floor ------------------------------------------------------------------------


def floor_app() -> Any:
    """A bare FastAPI + SQLAlchemy app: one case row by reference (``BENCH_DATABASE_URL``).

    SQLAlchemy's own engine and driver adaptation (no settings of ours but a pool as
    large as ours, so that it does not open a connection per request under 32
    concurrent ones), FastAPI's default serialisation.
    """
    from fastapi import FastAPI, HTTPException
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    engine = create_async_engine(os.environ["BENCH_DATABASE_URL"], pool_size=40, max_overflow=10)
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    app = FastAPI()
    cases = Case.__table__

    @app.get("/floor/{ref}")
    async def one(ref: str) -> dict[str, Any]:
        async with sessionmaker() as session:
            row = (await session.execute(select(cases).where(cases.c.ref == ref))).first()
        if row is None:
            raise HTTPException(404)
        return dict(row._mapping)

    return app


# -- filling --------------------------------------------------------------------------


async def add_cases(url: str, *, ntus: int, cases: int) -> None:
    """``cases`` cases on the inventory's NTUs (``bench/inventory_file.py`` names)."""
    engine = make_engine(url)
    sessionmaker = make_sessionmaker(engine)
    now = datetime.now(UTC)
    async with sessionmaker() as session:
        for start in range(0, cases, 2000):
            batch = []
            for i in range(start, min(cases, start + 2000)):
                n = i % ntus
                status = OPEN[i % len(OPEN)] if i % 5 == 0 else CaseStatus.CLOSED
                created = now - timedelta(minutes=(cases - i) * 3)
                due = now + timedelta(days=2 + i % 3) if status is not CaseStatus.CLOSED else None
                batch.append(
                    Case(
                        ref=f"CS-2026-{i + 1:06d}",
                        type=CaseType.INCIDENT,
                        priority=(CasePriority.P1, CasePriority.P2)[i % 2],
                        status=status,
                        source=CaseSource.PROACTIVE,
                        ntu_id=f"ntu-{n:06d}",
                        customer_id=f"cust{n // 20}",
                        service_id=f"SVC-{n}",
                        site=f"Site {n}",
                        summary=f"Router down at site {n}",
                        created_at=created,
                        updated_at=created,
                        assignee=None if i % 4 == 0 else f"eng-{i % 20}",
                        first_response_due_at=due,
                        ttr_due_at=due,
                        next_due_at=due,
                    )
                )
            session.add_all(batch)
            await session.commit()
    await engine.dispose()


async def make_key(url: str) -> str:
    engine = make_engine(url)
    service = ApiKeyService(sessionmaker=make_sessionmaker(engine), clock=SystemClock())
    created = await service.create_key(name="bench", role=Role.ENGINEER, created_by="bench")
    await engine.dispose()
    return created.secret


async def pg_admin(admin_url: str, statement: str) -> None:
    engine = make_engine(admin_url)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(statement))
    await engine.dispose()


# -- processes ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(
    command: Sequence[str], *, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``command`` with its output in ``log`` (a server's own errors, e.g. the
    requests an overload made clients give up on, would drown the figures)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            list(command),
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            stdout=out,
            stderr=out,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve_floor(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    return start(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.api_load:floor_app",
            "--factory",
            "--host=127.0.0.1",
            f"--port={port}",
            "--log-level=warning",
            "--no-access-log",
            # The loop nms itself runs on (runtime.event_loop), so the ratio compares
            # handlers, not event loops.
            f"--loop={environment_loop()}",
        ],
        log=log,
        env={"BENCH_DATABASE_URL": url},
    )


async def wait_for(url: str, *, headers: dict[str, str] | None = None, within: float) -> None:
    """Until ``url`` answers 200 (or ``within`` seconds pass)."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(headers=headers, timeout=10) as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError(f"{url} did not answer 200 within {within:.0f} s")


def cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid`` (all its threads) and of its living
    descendants (``nms api``'s workers), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return own + sum(cpu_seconds(child) for child in children(pid))


def postgres_cpu_seconds() -> float:
    """utime + stime of every PostgreSQL server process (any database: other users of
    the server count too), in seconds."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, _, rest = text.partition(" (")[2].rpartition(")")
        if name == "postgres" or name.startswith("postgres:"):
            fields = rest.split()
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def idle_cpu(pid: int, seconds: float) -> float:
    """The share of one core process ``pid`` uses with no requests."""
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds


# -- load -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Result:
    label: str
    requests: int
    rate: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float
    #: CPU per request less the server's idle CPU over the window (``nms run``).
    net_cpu_ms: float | None = None
    errors: int = 0
    #: PostgreSQL's CPU (all its processes) per request over the window.
    pg_cpu_ms: float = float("nan")
    #: What the errors were (the fixed-rate client's), printed under the table.
    failures: str = ""


_UNITS: Final = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value.strip())
    if match is None:
        print(f"  (wrk latency {value!r} not understood)")
        return float("nan")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _latency(out: str, percentile: str) -> float:
    found = re.search(rf"^\s+{percentile}\s+(\S+)", out, re.MULTILINE)
    if found is None:
        print(f"  (no {percentile} latency in wrk's output:\n{out})")
        return float("nan")
    return _ms(found.group(1))


def run_wrk(
    label: str,
    url: str,
    *,
    pid: int,
    key: str | None,
    connections: int,
    duration: float,
    idle: float = 0.0,
) -> Result:
    """wrk closed-loop on ``url``; CPU of ``pid`` over the run."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration:.0f}s", "--latency", "--timeout=10s"]
    if key is not None:
        command += ["-H", f"Authorization: Bearer {key}"]
    warm = [*command[:3], "-d2s", *command[4:], url]
    subprocess.run(warm, check=True, capture_output=True)
    began, wall, pg = cpu_seconds(pid), time.monotonic(), postgres_cpu_seconds()
    out = subprocess.run([*command, url], check=True, capture_output=True, text=True).stdout
    cpu, wall = cpu_seconds(pid) - began, time.monotonic() - wall
    pg = postgres_cpu_seconds() - pg
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50, p99 = (_latency(out, "50%"), _latency(out, "99%"))
    if errors:
        print(f"  {label}: {errors.group(0)}")
    served = max(requests, 1)
    return Result(
        label=label,
        requests=requests,
        rate=rate,
        p50_ms=p50,
        p99_ms=p99,
        cpu_ms=cpu / served * 1000,
        net_cpu_ms=(cpu - idle * wall) / served * 1000 if idle else None,
        errors=int(bad.group(1)) if bad else 0,
        pg_cpu_ms=pg / served * 1000,
    )


async def _answer(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    if length is None:
        raise RuntimeError("no Content-Length in the answer")
    await reader.readexactly(int(length.group(1)))
    return status


@dataclass
class Failures:
    """The fixed-rate client's failed requests, by kind, and when they were due."""

    kinds: Counter[str] = field(default_factory=Counter)
    due_s: list[float] = field(default_factory=list)
    """Seconds from the run's start at which each failed request was due."""

    def add(self, kind: str, due_s: float) -> None:
        self.kinds[kind] += 1
        self.due_s.append(due_s)

    def __len__(self) -> int:
        return len(self.due_s)

    def describe(self) -> str:
        """``412 all 128 connections busy, 3 timeout (due at 0.4-12.9 s)``."""
        if not self.due_s:
            return "none"
        kinds = ", ".join(f"{n} {kind}" for kind, n in self.kinds.most_common())
        return f"{kinds} (due at {min(self.due_s):.1f}-{max(self.due_s):.1f} s)"


async def open_loop(
    host: str, port: int, path: str, *, key: str, rate: float, duration: float
) -> tuple[list[float], Failures, float]:
    """Send ``rate`` requests a second for ``duration`` s, each on time whatever the
    answers do; return the latencies (from each request's scheduled start), the
    failures and the seconds until the last answer.

    At most ``MAX_CONNECTIONS`` are open, as a real client pool would: a request due
    when all of them wait for answers is counted as failed, not queued (an overloaded
    server then sheds load instead of piling up requests that time out).
    """
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    opened: list[asyncio.StreamWriter] = []
    latencies: list[float] = []
    failures = Failures()
    begin = loop.time() + 0.2

    async def one(due: float) -> None:
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(30):
                if idle:
                    reader, writer = idle.pop()
                    try:
                        writer.write(request)
                        status = await _answer(reader)
                    except (ConnectionError, asyncio.IncompleteReadError):
                        # The server closed it while it was idle (uvicorn's keep-alive
                        # timeout): send again on a new one, as HTTP clients' pools do.
                        opened.remove(writer)
                        writer.close()
                        writer = None
                if writer is None:
                    if len(opened) >= MAX_CONNECTIONS:
                        failures.add(f"all {MAX_CONNECTIONS} connections busy", due - begin)
                        return
                    reader, writer = await asyncio.open_connection(host, port)
                    opened.append(writer)
                    writer.write(request)
                    status = await _answer(reader)
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as error:
            failures.add(type(error).__name__, due - begin)
            if writer is not None:
                opened.remove(writer)
                writer.close()
            return
        if status != 200:
            failures.add(f"HTTP {status}", due - begin)
        else:
            latencies.append(loop.time() - due)
        idle.append((reader, writer))

    # One task a request, started when it is due (not thousands of sleeping tasks up
    # front, whose timers and garbage collection would delay the client itself).
    requests: set[asyncio.Task[None]] = set()
    for i in range(int(rate * duration)):
        due = begin + i / rate
        await asyncio.sleep(max(0.0, due - loop.time()))
        task = asyncio.create_task(one(due))
        requests.add(task)
        task.add_done_callback(requests.discard)
    await asyncio.gather(*requests)
    elapsed = loop.time() - begin
    for writer in opened:
        writer.close()
    return latencies, failures, elapsed


#: The ICMP loop's series on ``nms run``'s ``/metrics``.
_PROBE_SERIES: Final = {
    "cycles": 'nms_probe_cycles_total{probe="icmp"}',
    "overruns": 'nms_probe_cycle_overruns_total{probe="icmp"}',
    "last_cycle_s": 'nms_probe_cycle_duration_seconds{probe="icmp"}',
}


def probe_counters(port: int) -> dict[str, float]:
    """The ICMP loop's cycles, overruns and last cycle's duration (``nms run``)."""
    page = httpx.get(
        f"http://127.0.0.1:{port}/metrics", params={"per_ntu": "none"}, timeout=30
    ).text
    values = dict(line.rsplit(" ", 1) for line in page.splitlines() if line.startswith("nms_"))
    return {name: float(values.get(series, "nan")) for name, series in _PROBE_SERIES.items()}


def run_fixed(
    label: str, port: int, path: str, *, pid: int, key: str, rate: float, duration: float
) -> Result:
    began, pg = cpu_seconds(pid), postgres_cpu_seconds()
    latencies, failures, elapsed = asyncio.run(
        open_loop("127.0.0.1", port, path, key=key, rate=rate, duration=duration)
    )
    cpu, pg = cpu_seconds(pid) - began, postgres_cpu_seconds() - pg
    ordered = sorted(latencies) or [float("nan")]
    return Result(
        label=f"{label} @ {rate:.0f}/s offered",
        requests=len(latencies),
        rate=len(latencies) / elapsed,
        p50_ms=statistics.median(ordered) * 1000,
        p99_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        cpu_ms=cpu / max(len(latencies), 1) * 1000,
        errors=len(failures),
        pg_cpu_ms=pg / max(len(latencies), 1) * 1000,
        failures=failures.describe(),
    )


def print_results(title: str, results: list[Result], floor: Result | None) -> None:
    print(f"\n{title}   (load average {os.getloadavg()[0]:.2f})")
    print(
        f"  {'':44} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>11}"
        f" {'net of idle':>11} {'errors':>7} {'PG ms/req':>10}"
    )
    for result in [*results, *([floor] if floor else [])]:
        net = f"{result.net_cpu_ms:11.2f}" if result.net_cpu_ms is not None else f"{'':11}"
        print(
            f"  {result.label:44} {result.rate:8.0f} {result.p50_ms:8.1f} {result.p99_ms:8.1f}"
            f" {result.cpu_ms:11.2f} {net} {result.errors:7d} {result.pg_cpu_ms:10.2f}"
        )
    for result in results:
        if result.failures:
            print(f"  errors of {result.label}: {result.failures}")
    if floor is None:
        return
    ours = results[0]
    mine = ours.net_cpu_ms if ours.net_cpu_ms is not None else ours.cpu_ms
    print(f"  GET one case / floor, CPU per request: {mine / floor.cpu_ms:.2f}x")


# -- the two servers ------------------------------------------------------------------


def measure(
    title: str,
    *,
    server: subprocess.Popen[bytes],
    port: int,
    floor: subprocess.Popen[bytes] | None,
    floor_port: int,
    key: str,
    ntu: str,
    args: argparse.Namespace,
    idle: float = 0.0,
    probes: bool = False,
) -> None:
    base = f"http://127.0.0.1:{port}"
    ref = "CS-2026-000500"
    paths = {
        "GET /v1/cases/{ref}": f"/v1/cases/{ref}",
        "GET /v1/cases?limit=50": "/v1/cases?limit=50",
        "GET /v1/ntus/{id}/status": f"/v1/ntus/{ntu}/status",
    }
    common: dict[str, Any] = {"connections": args.connections, "duration": args.duration}
    results = [
        run_wrk(
            f"{label} ({args.connections} conns)",
            base + path,
            pid=server.pid,
            key=key,
            idle=idle,
            **common,
        )
        for label, path in paths.items()
    ]
    probes_before = probe_counters(port) if probes else None
    results.append(
        run_fixed(
            "GET /v1/cases/{ref}",
            port,
            paths["GET /v1/cases/{ref}"],
            pid=server.pid,
            key=key,
            rate=args.rate,
            duration=args.hold or args.duration,
        )
    )
    if probes_before is not None:
        after = probe_counters(port)
        print(
            f"  probes during the fixed-rate run ({args.hold or args.duration:.0f} s):"
            f" {after['cycles'] - probes_before['cycles']:.0f} ICMP cycles,"
            f" {after['overruns'] - probes_before['overruns']:.0f} overruns,"
            f" last cycle {after['last_cycle_s']:.1f} s"
        )
    floor_result = (
        None
        if floor is None
        else run_wrk(
            f"floor: bare handler, one row ({args.connections} conns)",
            f"http://127.0.0.1:{floor_port}/floor/{ref}",
            pid=floor.pid,
            key=None,
            **common,
        )
    )
    print_results(title, results, floor_result)


def bench_sqlite(args: argparse.Namespace, folder: Path) -> None:
    inventory = folder / "inventory.yaml"
    write_inventory(inventory, args.ntus)
    database = folder / "nms.db"
    url = f"sqlite+aiosqlite:///{database}"
    port, floor_port = free_port(), free_port()
    started = time.monotonic()
    server = start(
        [
            *NMS,
            "run",
            f"--inventory={inventory}",
            f"--listen=127.0.0.1:{port}",
            f"--database={url}",
            f"--api-workers={args.run_api_workers}",
        ],
        log=folder / "nms-run.log",
    )
    floor: subprocess.Popen[bytes] | None = None
    try:
        asyncio.run(wait_for(f"http://127.0.0.1:{port}/healthz", within=300))
        wait_serving(folder / "nms-run.log", args.run_api_workers, within=120)
        key = asyncio.run(make_key(url))
        ntu = f"ntu-{args.ntus // 2:06d}"
        headers = {"Authorization": f"Bearer {key}"}
        status_url = f"http://127.0.0.1:{port}/v1/ntus/{ntu}/status"
        asyncio.run(wait_for(status_url, headers=headers, within=300))
        print(f"nms run up with {args.ntus} NTUs in {time.monotonic() - started:.1f} s")
        asyncio.run(add_cases(url, ntus=args.ntus, cases=args.cases))
        floor = serve_floor(url, floor_port, folder / "floor.log")
        asyncio.run(wait_for(f"http://127.0.0.1:{floor_port}/floor/CS-2026-000001", within=60))
        time.sleep(5)  # the first probe cycles and the inventory sync settle
        # A whole ICMP interval (30 s by default): a sweep of every NTU falls in it.
        idle = idle_cpu(server.pid, 30)
        print(f"nms run idle: {idle * 100:.1f} % of one core")
        workers = "" if args.run_api_workers == 1 else f", {args.run_api_workers} API workers"
        measure(
            f"nms run{workers}, SQLite, {args.ntus} NTUs, {args.cases} cases",
            server=server,
            port=port,
            floor=floor,
            floor_port=floor_port,
            key=key,
            ntu=ntu,
            args=args,
            idle=idle,
            probes=True,
        )
    finally:
        if floor is not None:
            stop(floor)
        stop(server)
        for path in folder.glob("nms.db*"):
            path.unlink()


def wait_serving(log: Path, workers: int, *, within: float) -> None:
    """Until every worker of an ``nms api --workers N`` (or an ``nms run``'s) logged
    that it serves."""
    if workers == 1:
        return
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if len(set(re.findall(r"\[worker (\d+)\] .*\) serving", log.read_text()))) >= workers:
            return
        time.sleep(0.5)
    raise RuntimeError(f"not all {workers} workers serve within {within:.0f} s")


def bench_postgres(args: argparse.Namespace, folder: Path) -> None:
    admin = args.pg_admin_url
    base = admin.rsplit("/", 1)[0]
    url = f"{base}/{PG_DATABASE}"
    asyncio.run(pg_admin(admin, f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)'))
    asyncio.run(pg_admin(admin, f'CREATE DATABASE "{PG_DATABASE}"'))
    server: subprocess.Popen[bytes] | None = None
    floor: subprocess.Popen[bytes] | None = None
    try:
        asyncio.run(fill_postgres(url, ntus=args.ntus, cases=args.cases, open_share=0.2))
        key = asyncio.run(make_key(url))
        floor_port = free_port()
        floor = serve_floor(url, floor_port, folder / "floor-pg.log")
        asyncio.run(wait_for(f"http://127.0.0.1:{floor_port}/floor/CS-2026-000001", within=60))
        for n, workers in enumerate(args.workers):
            port = free_port()
            log = folder / f"nms-api-{workers}-workers.log"
            server = start(
                [
                    *NMS,
                    "api",
                    f"--database={url}",
                    f"--listen=127.0.0.1:{port}",
                    f"--workers={workers}",
                ],
                log=log,
            )
            asyncio.run(wait_for(f"http://127.0.0.1:{port}/healthz", within=120))
            wait_serving(log, workers, within=120)
            measure(
                f"nms api --workers {workers}, PostgreSQL, {args.ntus} NTUs, {args.cases} cases",
                server=server,
                port=port,
                # The floor once, with the first count: it does not depend on ours.
                floor=floor if n == 0 else None,
                floor_port=floor_port,
                key=key,
                ntu=f"ntu-{args.ntus // 2}",
                args=args,
            )
            stop(server)
            server = None
    finally:
        for process in (floor, server):
            if process is not None:
                stop(process)
        asyncio.run(pg_admin(admin, f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)'))


def _counts(text: str) -> list[int]:
    counts = [int(part) for part in text.split(",")]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("worker counts are 1 or more")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ntus", type=int, default=10_000)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=float, default=500.0, help="fixed-rate requests/s")
    parser.add_argument(
        "--hold",
        type=float,
        default=None,
        help="seconds of the fixed-rate run (default: --duration); nms run's ICMP"
        " interval is 30 s, so 90 s or more shows whether its sweeps keep time",
    )
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get(
            "NMS_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
        ),
        help="a PostgreSQL database to create and drop the bench's own from",
    )
    parser.add_argument("--only", choices=("sqlite", "postgres"), default=None)
    parser.add_argument(
        "--workers",
        type=_counts,
        default=[1],
        metavar="N[,N...]",
        help="nms api's worker processes (api.workers); a list measures each in turn",
    )
    parser.add_argument(
        "--run-api-workers",
        type=int,
        default=1,
        metavar="N",
        help="nms run's API worker processes (api.workers; 1: nms run serves the API itself)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: run scripts/setup --dev as root (Debian package wrk)")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    # Kept: the servers' logs are there.
    folder = Path(tempfile.mkdtemp(prefix="api_load-"))
    print(f"server logs in {folder}")
    if args.only in (None, "sqlite"):
        bench_sqlite(args, folder)
    if args.only in (None, "postgres"):
        bench_postgres(args, folder)


if __name__ == "__main__":
    main()
