"""Detector throughput: probe results per second into the state machines and SQLite.

    python bench/detector.py [--ntus 10000] [--cycles 10]

Feeds cycles of ICMP results for N NTUs (5 % of them failing) through the real
detector, case service and an SQLite file, as ``nms run`` does, and prints the time
and CPU per cycle and per result. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import resource
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.database import make_engine, make_sessionmaker, migrate
from caseapi.incidents import IncidentService
from nms.app.loop import tune_collector
from nms.app.settings import Settings
from nms.bus.batch import PingBatch
from nms.clock import FakeClock
from nms.detector.availability import Rules
from nms.detector.engine import Detector
from nms.detector.migrate import migrate_detector_state
from nms.detector.settings import DegradedSettings
from nms.inventory.loader import parse_inventory
from nms.inventory.model import Inventory
from nms.inventory.sync import sync_inventory
from probes.observation import PingResult


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def fleet(ntus: int) -> Inventory:
    """``ntus`` NTUs ``n0``, ``n1``, ... of one customer, on 10.0.0.0/8 addresses (never
    sent to: the benches feed the detector results, they do not probe)."""
    lines = ["customers: [{id: c, name: C}]", "ntus:"]
    for i in range(ntus):
        address = ipaddress.ip_address(0x0A000000 + i)
        lines.append(f'  - {{id: n{i}, customer: c, address: "{address}"}}')
    return parse_inventory("\n".join(lines), source="bench", fmt="yaml")


@asynccontextmanager
async def fleet_database(inventory: Inventory) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A new SQLite file with the schema, the detector's tables and ``inventory``, as
    ``nms run`` has them; removed on exit."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        try:
            await migrate(engine)
            await migrate_detector_state(engine)
            sessionmaker = make_sessionmaker(engine)
            await sync_inventory(sessionmaker, inventory)
            yield sessionmaker
        finally:
            await engine.dispose()


async def main(ntus: int, cycles: int) -> None:
    inventory = fleet(ntus)
    async with fleet_database(inventory) as sessionmaker:
        clock = FakeClock()
        detector = Detector(
            rules=Rules(
                down_after=timedelta(minutes=10),
                restore_after=2,
                stale_after=timedelta(minutes=2),
            ),
            degraded=DegradedSettings(),
            clock=clock,
            sink=IncidentService(sessionmaker=sessionmaker, clock=clock),
            sessionmaker=sessionmaker,
        )
        await detector.load(inventory)
        specs = inventory.ntus
        walls, cpus = [], []
        opening: list[tuple[int, float, float]] = []  # (cases, wall, CPU) of the cycles that opened
        for cycle in range(cycles):
            opened_before = detector.stats.cases_opened
            results = [
                PingResult(
                    key=s.id,
                    address=s.address,
                    started_at=clock.now(),
                    sent=5,
                    received=0 if i % 20 == 0 else 5,
                    rtts=() if i % 20 == 0 else (0.001,) * 5,
                )
                for i, s in enumerate(specs)
            ]
            w0, c0 = time.perf_counter(), cpu()
            for start in range(0, len(results), 256):  # batches as the probe loop sends
                await detector.observe(PingBatch(tuple(results[start : start + 256])))
            await detector.tick()
            walls.append(time.perf_counter() - w0)
            cpus.append(cpu() - c0)
            if detector.stats.cases_opened > opened_before:
                opening.append((detector.stats.cases_opened - opened_before, walls[-1], cpus[-1]))
            clock.advance(timedelta(seconds=30))
            print(f"cycle {cycle + 1:2d}: {walls[-1]:.2f} s wall, {cpus[-1]:.2f} s CPU")
    best = min(walls[1:] or walls)
    cpu_best = min(cpus[1:] or cpus)
    print(
        f"\n{ntus} NTUs: best cycle {best:.2f} s wall, {cpu_best:.2f} s CPU "
        f"= {cpu_best / ntus * 1000:.3f} ms CPU per result, {ntus / best:,.0f} results/s; "
        f"cases opened {detector.stats.cases_opened}"
    )
    for cases, wall, used in opening:
        print(f"the cycle that opened {cases} P1s: {wall:.2f} s wall, {used:.2f} s CPU")
    print("budget: one 30 s cycle of 10,000 NTUs must cost a small part of one core")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ntus", type=int, default=10_000)
    parser.add_argument("--cycles", type=int, default=25)
    args = parser.parse_args()
    tune_collector(Settings().runtime.gc_threshold)  # as the nms processes run
    asyncio.run(main(args.ntus, args.cycles))
