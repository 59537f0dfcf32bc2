"""Reports over a month of outage history for a 10,000-NTU fleet.

    python bench/reports.py [--ntus 10000] [--customers 100] [--database URL]

Writes a month (November 2026) of history into a fresh SQLite file (or the given
database, which must be empty and is migrated): per NTU about 0.3 own outages
(P1, log-normal around 40 minutes) and 0.2 degradations (P2) a month; 20 upstream
node outages taking 50 NTUs each down together; one probe shard without data for
10 minutes (half the fleet); 30 maintenance windows over one customer's NTUs each;
one case per P1/P2 with first-response and repair deadlines. Then it times the
fleet availability report (service, JSON, CSV) and one customer's monthly PDF, and
their peak Python memory (tracemalloc, measured in a second run). Not a test: it
prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import insert

from caseapi.cases.models import Case
from caseapi.customers.models import Customer
from caseapi.database import make_engine, make_sessionmaker, migrate
from caseapi.maintenance.models import MaintenanceWindow
from caseapi.ntus.models import Ntu
from caseapi.reports.document import monthly_pdf
from caseapi.reports.models import OutageInterval
from caseapi.reports.render import availability_csv
from caseapi.reports.schemas import availability_public
from caseapi.reports.service import ReportQuery, ReportService
from nms.clock import FakeClock

T = TypeVar("T")
MONTH = datetime(2026, 11, 1, tzinfo=UTC)
SECONDS = 30 * 86400


def at(seconds: float) -> datetime:
    return MONTH + timedelta(seconds=seconds)


def history(ntus: int, customers: int, rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    """Rows for every table, as plain dicts (bulk inserts)."""
    cust = [f"c{i:03d}" for i in range(customers)]
    ntu_rows: list[dict[str, Any]] = [
        {
            "id": f"n{i:05d}",
            "customer_id": cust[i % customers],
            "service_id": f"SVC-{i:05d}",
            "site": f"Site {i // 10 % 10} of {cust[i % customers]}",
            "address": f"198.18.{i // 256}.{i % 256}",
            "probe": {},
            "attributes": {},
        }
        for i in range(ntus)
    ]
    cases: list[dict[str, Any]] = []
    intervals: list[dict[str, Any]] = []

    def case(customer: str, ntu: str | None, priority: str, start: datetime, end: datetime) -> str:
        ref = f"CS-2026-{len(cases) + 1:06d}"
        created = start + timedelta(minutes=10)
        responded = created + timedelta(minutes=rng.choice([5, 12, 25, 40]))
        cases.append(
            {
                "ref": ref,
                "type": "incident",
                "priority": priority,
                "status": "closed",
                "source": "proactive",
                "ntu_id": ntu,
                "customer_id": customer,
                "summary": f"{ntu} {priority}",
                "outage_start": start,
                "restored_at": end,
                "created_at": created,
                "updated_at": created,
                "first_response_due_at": created + timedelta(minutes=30),
                "first_responded_at": responded,
                "ttr_due_at": created + timedelta(hours=4 if priority == "P1" else 8),
            }
        )
        return ref

    def interval(
        ntu: dict[str, Any],
        kind: str,
        cause: str,
        start: datetime,
        end: datetime,
        ref: str | None,
        counted: bool,
    ) -> None:
        intervals.append(
            {
                "ntu_id": ntu["id"],
                "customer_id": ntu["customer_id"],
                "service_id": ntu["service_id"],
                "site": ntu["site"],
                "kind": kind,
                "cause": cause,
                "start_at": start,
                "end_at": end,
                "case_id": None,
                "case_ref": ref,
                "counted": counted,
            }
        )

    for ntu in ntu_rows:
        for kind, rate in (("down", 0.3), ("degraded", 0.2)):
            while rng.random() < rate:
                rate /= 3  # a second one in the month is rarer
                start = at(rng.uniform(0, SECONDS))
                length = timedelta(seconds=min(rng.lognormvariate(7.8, 1.0), 2 * 86400))
                priority = "P1" if kind == "down" else "P2"
                ref = case(ntu["customer_id"], ntu["id"], priority, start, start + length)
                interval(ntu, kind, "own", start, start + length, ref, kind == "down")
    for _ in range(20):  # upstream node outages, 50 NTUs each
        start = at(rng.uniform(0, SECONDS))
        end = start + timedelta(minutes=rng.uniform(15, 180))
        behind = rng.sample(ntu_rows, 50)
        refs = {c: case(c, None, "P1", start, end) for c in {n["customer_id"] for n in behind}}
        for ntu in behind:
            interval(ntu, "down", "upstream", start, end, refs[ntu["customer_id"]], True)
    gap = at(rng.uniform(0, SECONDS))
    for ntu in ntu_rows[::2]:  # one shard's NTUs without data for 10 minutes
        interval(ntu, "down", "no_data", gap, gap + timedelta(minutes=10), None, False)
    windows = []
    for w in range(30):
        start = at(rng.uniform(0, SECONDS - 86400))
        windows.append(
            {
                "ref": f"MW-2026-{w + 1:06d}",
                "title": f"Planned work {w + 1}",
                "description": "",
                "kind": "planned",
                "behaviour": "mute",
                "starts_at": start,
                "ends_at": start + timedelta(hours=2),
                "scope_ntus": [],
                "scope_nodes": [],
                "scope_customers": [cust[w % customers]],
                "scope_services": [],
                "created_by": "bench",
                "created_at": start,
                "updated_by": "bench",
                "updated_at": start,
                "version": 1,
            }
        )
    return {
        "customers": [
            {
                "id": c,
                "name": f"Customer {c}",
                "contract_status": "active",
                "attributes": {"timezone": "Europe/London"},
            }
            for c in cust
        ],
        "ntus": ntu_rows,
        "cases": cases,
        "intervals": intervals,
        "windows": windows,
    }


async def timed(label: str, work: Callable[[], Awaitable[T]]) -> T:
    started, cpu0 = time.perf_counter(), _cpu()
    result = await work()
    print(f"  {label:<44} {time.perf_counter() - started:7.3f} s wall  {_cpu() - cpu0:7.3f} s CPU")
    return result


async def peak(work: Callable[[], Awaitable[Any]]) -> float:
    tracemalloc.start()
    try:
        await work()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def main(ntus: int, customers: int, url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(url or f"sqlite+aiosqlite:///{Path(tmp) / 'reports.db'}")
        await migrate(engine)
        rows = history(ntus, customers, random.Random(15))
        async with engine.begin() as conn:
            await conn.execute(insert(Customer), rows["customers"])
            await conn.execute(insert(Ntu), rows["ntus"])
            await conn.execute(insert(Case), rows["cases"])
            await conn.execute(insert(OutageInterval), rows["intervals"])
            await conn.execute(insert(MaintenanceWindow), rows["windows"])
        counted = sum(1 for r in rows["intervals"] if r["cause"] != "no_data")
        print(
            f"{ntus} NTUs, {customers} customers, November 2026: {len(rows['intervals'])} "
            f"intervals ({counted} outages/degradations), {len(rows['cases'])} cases, "
            f"{len(rows['windows'])} maintenance windows ({engine.dialect.name})"
        )
        service = ReportService(
            sessionmaker=make_sessionmaker(engine),
            clock=FakeClock(start=datetime(2026, 12, 2, tzinfo=UTC)),
        )
        fleet = ReportQuery(month="2026-11")
        one = ReportQuery(month="2026-11", customer="c007")

        async def fleet_report() -> Any:
            return await service.availability(principal=None, query=fleet)

        async def fleet_json() -> bytes:
            report = await fleet_report()
            return availability_public(report).model_dump_json().encode()

        async def fleet_csv() -> str:
            return availability_csv(await fleet_report())

        async def customer_pdf() -> bytes:
            availability = await service.availability(principal=None, query=one)
            sla = await service.sla(principal=None, query=one)
            return monthly_pdf(availability, sla)

        await fleet_report()  # warm-up: imports, connection, statement cache
        report = await timed("fleet availability (service)", fleet_report)
        body = await timed("fleet availability as JSON (service + render)", fleet_json)
        text = await timed("fleet availability as CSV (service + render)", fleet_csv)
        pdf = await timed("one customer's monthly PDF (c007)", customer_pdf)
        print(
            f"  fleet: availability {report.summary.availability:.4f} %, "
            f"{report.summary.outages} outages, {len(report.rows)} rows; JSON "
            f"{len(body) / 2**20:.1f} MiB, CSV {len(text) / 2**20:.1f} MiB; "
            f"PDF {len(pdf) / 1024:.0f} KiB"
        )
        print(
            f"  peak Python memory: fleet JSON {await peak(fleet_json):.0f} MiB, "
            f"customer PDF {await peak(customer_pdf):.0f} MiB; process max RSS "
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
        )
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ntus", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--database", metavar="URL", help="an empty database (default: SQLite)")
    args = parser.parse_args()
    asyncio.run(main(args.ntus, args.customers, args.database))
