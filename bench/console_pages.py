"""Console page latency: the queue page and the case page with 10k NTUs and 10k cases.

    python bench/console_pages.py [--ntus 10000] [--cases 10000] [--clients 20]
                                  [--requests 400] [--database-url URL]

Fills a fresh SQLite file (or ``--database-url``'s empty database) with ``--ntus``
NTUs of 100 customers and ``--cases`` cases, ``--open-share`` of them open in every
open status and the rest closed (deadlines around now,
20 assignees, a busy case with 40 timeline entries and 20 comments) and an engineer's
account signed in (a real session row: each page looks it up as in production),
serves the app with uvicorn in a child process (``--workers``, one by default as
``nms api`` runs it), and has ``--clients`` concurrent signed-in engineers fetch each
page ``--requests`` times, back to back or ``--think`` seconds apart.
Prints p50 / p99 / max latency and throughput per page. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import httpx

from caseapi.auth.principal import Role
from caseapi.cases.enums import CaseEventKind, CasePriority, CaseSource, CaseStatus, CaseType
from caseapi.cases.models import Case, CaseEvent
from caseapi.clock import SystemClock
from caseapi.comments.models import Comment
from caseapi.core.database import make_engine, make_sessionmaker, migrate
from caseapi.customers.models import Customer
from caseapi.ntus.models import Ntu, NtuState
from caseapi.users.passwords import cheap_hasher
from caseapi.users.service import UserService
from caseapi.users.sessions import DatabaseSessionStore
from caseapi.web.session import SESSION_COOKIE

BUSY_REF: Final = "CS-2026-000001"
#: The open statuses cases cycle through (the rest are closed, ``--open-share``).
OPEN: Final = (
    [CaseStatus.NEW] * 2
    + [CaseStatus.IN_PROGRESS] * 3
    + [CaseStatus.WAITING_CUSTOMER, CaseStatus.WAITING_SUPPLIER, CaseStatus.SOLVED]
    + [CaseStatus.RFO_PENDING]
)
PAGES: Final = {
    "queue: all": "/cases",
    "queue: unassigned": "/cases?queue=unassigned",
    "queue: at risk, by deadline": "/cases?queue=at_risk&sort=due",
    "queue: search + filter": "/cases?q=router&priority=P1",
    "case page (busy case)": f"/cases/{BUSY_REF}",
}


def status_of(i: int, open_share: float) -> CaseStatus:
    """Case ``i``'s status: ``open_share`` of the cases open, spread evenly."""
    if int((i + 1) * open_share) == int(i * open_share):
        return CaseStatus.CLOSED
    return OPEN[int(i * open_share) % len(OPEN)]


async def sign_in(url: str) -> str:
    """An engineer's account and a session of it: the session cookie's token."""
    engine = make_engine(url)
    sessionmaker = make_sessionmaker(engine)
    clock = SystemClock()
    users = UserService(sessionmaker=sessionmaker, clock=clock, hasher=cheap_hasher())
    user = await users.create_user(
        email="bench@example.net",
        display_name="Bench Engineer",
        password="correct horse battery staple",
        role=Role.ENGINEER,
    )
    token, _ = await DatabaseSessionStore(sessionmaker=sessionmaker, clock=clock).open(user)
    await engine.dispose()
    return token


async def fill(url: str, *, ntus: int, cases: int, open_share: float) -> None:
    engine = make_engine(url)
    await migrate(engine)
    sessionmaker = make_sessionmaker(engine)
    now = datetime.now(UTC)
    async with sessionmaker() as session:
        session.add_all(Customer(id=f"cust-{c}", name=f"Customer {c}") for c in range(100))
        await session.flush()
        session.add_all(
            Ntu(
                id=f"ntu-{n}",
                customer_id=f"cust-{n % 100}",
                address=f"10.{n // 65536}.{n // 256 % 256}.{n % 256}",
                service_id=f"svc-{n}",
                site=f"Site {n}",
            )
            for n in range(ntus)
        )
        await session.flush()
        session.add_all(
            NtuState(
                ntu_id=f"ntu-{n}",
                status="down" if n % 50 == 0 else "up",
                since=now - timedelta(hours=1),
                rtt_avg=0.012,
                loss=0.0,
                jitter=0.001,
            )
            for n in range(ntus)
        )
        await session.commit()
        for start in range(0, cases, 2000):
            batch = []
            for i in range(start, min(cases, start + 2000)):
                status = status_of(i, open_share)
                created = now - timedelta(minutes=(cases - i) * 3)
                batch.append(
                    Case(
                        ref=f"CS-2026-{i + 1:06d}",
                        type=CaseType.INCIDENT,
                        priority=(CasePriority.P1, CasePriority.P2)[i % 2],
                        status=status,
                        source=CaseSource.PROACTIVE,
                        ntu_id=f"ntu-{i % ntus}",
                        customer_id=f"cust-{i % ntus % 100}",
                        service_id=f"svc-{i % ntus}",
                        site=f"Site {i % ntus}",
                        summary=("Router down" if i % 3 == 0 else "Line degraded")
                        + f" at site {i}",
                        created_at=created,
                        updated_at=created,
                        assignee=None if i % 4 == 0 else f"eng-{i % 20}",
                        first_response_due_at=now + timedelta(minutes=(i % 120) - 60),
                        ttr_due_at=now + timedelta(hours=(i % 12) - 2),
                        next_due_at=now + timedelta(minutes=(i % 120) - 60),
                        monitoring_until=now + timedelta(hours=10)
                        if status is CaseStatus.SOLVED
                        else None,
                    )
                )
            session.add_all(batch)
            await session.commit()
        busy = await session.get(Case, 1)
        assert busy is not None
        busy.status = CaseStatus.IN_PROGRESS
        session.add_all(
            CaseEvent(
                case_id=1,
                at=now - timedelta(minutes=60 - e),
                kind=CaseEventKind.STATUS_CHANGED,
                actor="eng-1",
                data={"from": "new", "to": "in_progress"},
            )
            for e in range(20)
        )
        for c in range(20):
            visibility = "internal" if c % 2 else "public"
            comment = Comment(
                case_id=1,
                created_at=now - timedelta(minutes=40 - c),
                author="engineer:eng-1",
                author_role="engineer",
                visibility=visibility,
                body=f"Update {c}: checked the line, " * 5,
            )
            session.add(comment)
            await session.flush()
            session.add(
                CaseEvent(
                    case_id=1,
                    at=comment.created_at,
                    kind=CaseEventKind.COMMENT_ADDED,
                    actor="eng-1",
                    data={"comment_id": comment.id, "visibility": visibility},
                )
            )
        await session.commit()
    await engine.dispose()


def app_factory() -> object:
    """The app a uvicorn worker serves (``BENCH_DATABASE_URL``)."""
    from caseapi.api.app import create_app

    engine = make_engine(os.environ["BENCH_DATABASE_URL"])
    app = create_app(sessionmaker=make_sessionmaker(engine))
    gc.freeze()  # as nms api does once the app is built (nms.app.api)
    return app


def serve(url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    """uvicorn serving ``app_factory`` over ``url`` (a process of its own)."""
    root = Path(__file__).resolve().parent.parent
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.console_pages:app_factory",
        "--factory",
        "--host=127.0.0.1",
        f"--port={port}",
        f"--workers={workers}",
        "--log-level=warning",
    ]
    env = {**os.environ, "BENCH_DATABASE_URL": url, "PYTHONPATH": str(root)}
    return subprocess.Popen(command, cwd=root, env=env)


async def measure(
    base: str, path: str, *, token: str, clients: int, requests: int, think: float = 0.0
) -> list[float]:
    latencies: list[float] = []
    left = requests

    async def client(number: int) -> None:
        nonlocal left
        async with httpx.AsyncClient(
            base_url=base, cookies={SESSION_COOKIE: token}, timeout=60
        ) as http:
            # Users who think do not all click at once.
            await asyncio.sleep(think * number / clients)
            while left > 0:
                left -= 1
                started = time.perf_counter()
                response = await http.get(path)
                latencies.append(time.perf_counter() - started)
                await asyncio.sleep(think)
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")

    await asyncio.gather(*(client(n) for n in range(clients)))
    return latencies


async def wait_up(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as http:
        for _ in range(600):
            try:
                await http.get("/healthz")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise RuntimeError("the server did not start")


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` and its children so far."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue  # gone meanwhile
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        pending.extend(int(child) for child in children)
    return total


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ntus", type=int, default=10_000)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="seconds a client waits between its requests (0: back to back)",
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument(
        "--open-share",
        type=float,
        default=0.2,
        help="the share of the cases still open (the rest closed); default 0.2",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        started = time.perf_counter()
        asyncio.run(fill(url, ntus=args.ntus, cases=args.cases, open_share=args.open_share))
        token = asyncio.run(sign_in(url))
        print(
            f"filled {args.ntus} NTUs, {args.cases} cases ({args.open_share:.0%} open)"
            f" in {time.perf_counter() - started:.1f} s"
        )
        port = _free_port()
        server = serve(url, port, args.workers)
        try:
            base = f"http://127.0.0.1:{port}"
            asyncio.run(wait_up(base))
            print(
                f"{args.clients} concurrent clients, {args.requests} requests a page,"
                f" think time {args.think} s, {args.workers} worker(s)"
            )
            print(
                f"{'page':32} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'req/s':>8}"
                f" {'server CPU ms/req':>18}"
            )
            for label, path in PAGES.items():
                asyncio.run(measure(base, path, token=token, clients=2, requests=20))  # warm up
                began = time.perf_counter()
                cpu_before = server_cpu(server.pid)
                latencies = asyncio.run(
                    measure(
                        base,
                        path,
                        token=token,
                        clients=args.clients,
                        requests=args.requests,
                        think=args.think,
                    )
                )
                elapsed = time.perf_counter() - began
                cpu = (server_cpu(server.pid) - cpu_before) / len(latencies)
                ordered = sorted(latencies)
                p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
                print(
                    f"{label:32} {statistics.median(ordered) * 1000:8.1f} {p99 * 1000:8.1f}"
                    f" {ordered[-1] * 1000:8.1f} {len(ordered) / elapsed:8.1f}"
                    f" {cpu * 1000:18.2f}"
                )
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
