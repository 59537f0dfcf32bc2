"""The NOC board and the change stream with a 10,000-NTU fleet and 10,000 cases.

    python bench/console.py [--ntus 10000] [--cases 10000] [--streams 50] [--database URL]

Seeds a fresh SQLite file (or the given empty database, migrated): the fleet with a
status each (about 2% down, 1% suspect, 1% never judged), cases of which 300 are
open P1/P2 incidents (a third past their first response), each with a timeline
entry. Then, over ASGI (no sockets: the figures are the app's own cost):

- the board page and its live fragment, sequentially and 20 at a time (p50 / p99);
- the change feed's database poll (what one process runs every ``events_poll``);
- the fan-out of one change to ``--streams`` open ``/events`` streams: from the
  change's commit to the last stream's event, and the refresh every stream's page
  then asks for (that many fragment requests at once).

Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import insert

from caseapi.app import create_app
from caseapi.auth.principal import Principal, Role
from caseapi.cases.incidents import IncidentService
from caseapi.cases.models import Case, CaseEvent
from caseapi.customers.models import Customer
from caseapi.database import make_engine, make_sessionmaker, migrate
from caseapi.incidents import IncidentOpen
from caseapi.ntus.models import Ntu, NtuState
from caseapi.web.noc.board import BoardService
from caseapi.web.noc.config import BoardSettings
from caseapi.web.session import SESSION_COOKIE, MemorySessionStore, WebSession, new_csrf_token
from nms.clock import FakeClock

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def rows(ntus: int, cases: int, rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    customers = [{"id": f"c{i:03d}", "name": f"Customer {i}"} for i in range(100)]
    ntu_rows = [
        {
            "id": f"n{i:05d}",
            "customer_id": f"c{i % 100:03d}",
            "service_id": f"SVC-{i:05d}",
            "site": f"Site {i}",
            "address": f"198.18.{i // 256}.{i % 256}",
            "probe": {},
            "attributes": {},
        }
        for i in range(ntus)
    ]
    states = []
    for i in range(ntus):
        roll = rng.random()
        if roll < 0.01:
            continue  # never judged: unknown
        status = "down" if roll < 0.03 else "suspect" if roll < 0.04 else "up"
        since = NOW - timedelta(minutes=rng.randint(1, 10_000))
        states.append({"ntu_id": f"n{i:05d}", "status": status, "since": since})
    case_rows, events = [], []
    for i in range(cases):
        open_ = i >= cases - 300
        created = NOW - (timedelta(minutes=rng.randint(1, 50)) if open_ else timedelta(days=3))
        case_rows.append(
            {
                "id": i + 1,
                "ref": f"CS-2025-{i + 1:06d}",
                "type": "incident",
                "priority": "P1" if i % 3 else "P2",
                "status": ("new" if i % 2 else "in_progress") if open_ else "closed",
                "source": "proactive",
                "ntu_id": f"n{i % ntus:05d}",
                "customer_id": f"c{i % 100:03d}",
                "summary": f"NTU n{i % ntus:05d} down",
                "created_at": created,
                "updated_at": created,
                "first_response_due_at": created + timedelta(minutes=30),
                "ttr_due_at": created + timedelta(hours=4),
                "first_response_breached_at": created + timedelta(minutes=30)
                if open_ and i % 3 == 0
                else None,
            }
        )
        events.append(
            {"case_id": i + 1, "at": created, "kind": "opened", "actor": "detector", "data": {}}
        )
    return {"customers": customers, "ntus": ntu_rows, "states": states, "cases": case_rows,
            "events": events}  # fmt: skip


async def timed(call: Callable[[], Awaitable[object]], n: int, concurrency: int = 1) -> list[float]:
    samples: list[float] = []
    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with semaphore:
            start = time.perf_counter()
            await call()
            samples.append(time.perf_counter() - start)

    await asyncio.gather(*(one() for _ in range(n)))
    return samples


def show(label: str, samples: list[float]) -> None:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"  {label:<44} p50 {statistics.median(ms):7.2f} ms   p99 {p99:7.2f} ms  (n={len(ms)})")


async def open_stream(app: FastAPI, token: str, got: asyncio.Queue[float]) -> asyncio.Task[None]:
    """``GET /events`` over ASGI; puts the arrival time of each change event on ``got``."""
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1", "method": "GET", "scheme": "http", "path": "/events",
        "raw_path": b"/events", "query_string": b"", "root_path": "",
        "headers": [(b"host", b"bench"), (b"cookie", f"{SESSION_COOKIE}={token}".encode())],
        "client": ("127.0.0.1", 1), "server": ("bench", 80),
    }  # fmt: skip
    requested = False
    forever = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await forever.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body", b"").startswith(
            b"event: change"
        ):
            got.put_nowait(time.perf_counter())

    return asyncio.create_task(app(scope, receive, send))  # type: ignore[arg-type]


async def main(ntus: int, cases: int, streams: int, database: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = database or f"sqlite+aiosqlite:///{Path(tmp) / 'console.db'}"
        engine = make_engine(url)
        await migrate(engine)
        sessionmaker = make_sessionmaker(engine)
        data = rows(ntus, cases, random.Random(13))
        async with sessionmaker() as session:
            await session.execute(insert(Customer), data["customers"])
            await session.execute(insert(Ntu), data["ntus"])
            await session.execute(insert(NtuState), data["states"])
            await session.execute(insert(Case), data["cases"])
            await session.execute(insert(CaseEvent), data["events"])
            await session.commit()
        clock = FakeClock(start=NOW)
        store = MemorySessionStore()
        app = create_app(sessionmaker=sessionmaker, clock=clock, web_sessions=store)
        poll = 0.2
        app.state.board_settings = BoardSettings(events_poll=timedelta(seconds=poll))
        token = store.open(
            WebSession(
                user_id=None, email="noc@bench", display_name="noc",
                principal=Principal(key_id=None, name="noc", role=Role.NOC),
                csrf_token=new_csrf_token(),
            )
        )  # fmt: skip
        print(f"console bench: {ntus} NTUs, {cases} cases (300 open), {url.split(':')[0]}")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", cookies={SESSION_COOKIE: token}
        ) as client:
            page = await client.get("/noc")
            assert page.status_code == 200, page.text[:500]
            print(f"  board page: {len(page.content) // 1024} KiB")

            async def board() -> None:
                assert (await client.get("/noc")).status_code == 200

            async def fragment() -> None:
                assert (await client.get("/noc/fragment")).status_code == 200

            service = BoardService(
                sessionmaker=sessionmaker,
                cases=app.state.case_service,
                settings=app.state.board_settings,
            )
            show("GET /noc, one at a time", await timed(board, 100))
            show("GET /noc, 20 concurrent users", await timed(board, 200, concurrency=20))
            show("GET /noc/fragment, one at a time", await timed(fragment, 100))
            show(
                "board data alone (queries, no HTML)",
                await timed(partial(service.board, shards=None), 100),
            )
            show(
                "change-feed poll (fingerprint), per interval",
                await timed(service.fingerprint, 200),
            )

            got: asyncio.Queue[float] = asyncio.Queue()
            tasks = [await open_stream(app, token, got) for _ in range(streams)]
            await asyncio.sleep(poll * 3)  # the watcher has its baseline
            feed = app.state.change_feed
            probes = feed.probes
            incidents = IncidentService(sessionmaker=sessionmaker, clock=clock)
            await incidents.open_incident(
                IncidentOpen(
                    dedup_key="ntu:n00042:down", priority="P1", ntu_id="n00042",
                    customer_id="c042", service_id="SVC-00042", site="Site 42",
                    outage_start=NOW, detected_at=NOW, summary="n00042 down",
                )
            )  # fmt: skip
            committed = time.perf_counter()
            arrivals = [await asyncio.wait_for(got.get(), 10) for _ in range(streams)]
            spread = (max(arrivals) - committed) * 1000
            print(
                f"  one change -> {streams} streams: last event {spread:.0f} ms after the commit"
                f" (poll every {poll * 1000:.0f} ms; {feed.probes - probes} polls for all streams)"
            )
            shared = app.state.shared_board
            reads = shared.reads
            start = time.perf_counter()
            await asyncio.gather(*(fragment() for _ in range(streams)))
            took = (time.perf_counter() - start) * 1000
            print(
                f"  then {streams} fragment refreshes at once: {took:.0f} ms in all,"
                f" {shared.reads - reads} board read(s) from the database"
            )
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ntus", type=int, default=10_000)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--database", help="an empty database URL (default: a temporary SQLite)")
    args = parser.parse_args()
    asyncio.run(main(args.ntus, args.cases, args.streams, args.database))
