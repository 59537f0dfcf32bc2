"""The detector side of ``nms run`` on a fake clock: timing rules tested without waiting.

``Scenario`` builds what ``nms run`` builds for the detector - the migrated database,
the case services, ``DetectorService`` with its tick, maintenance watch and inventory
on the in-process bus - at the production settings (10 minutes down, 30 s probe
interval, 2 minutes stale), and plays probe cycles on a ``FakeClock``: ten minutes
of outage take milliseconds. The network is not the point here; the lab tests keep a
few real end-to-end runs for that.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from caseapi.app import CaseServices
from caseapi.database import make_engine, make_sessionmaker
from nms.app.detector_service import DetectorService
from nms.app.settings import Settings
from nms.app.wiring import build_case_services, migrate_all
from nms.bus.batch import Batch, PingBatch
from nms.bus.inprocess import InProcessBus
from nms.clock import FakeClock
from nms.detector.availability import Status
from nms.inventory.loader import parse_inventory
from nms.inventory.model import Inventory
from nms.inventory.sync import sync_inventory
from probes.observation import PingResult

INTERVAL = timedelta(seconds=30)
_WAIT = 10.0  # real seconds a step may take (database writes run in threads)


def inventory_of(ntus: int, *, customer: str = "acme") -> Inventory:
    lines = ["customers:", f"  - {{id: {customer}, name: ACME}}", "ntus:"]
    for i in range(ntus):
        lines.append(
            f"  - {{id: ntu-{i}, customer: {customer}, service_id: SVC-{i}, "
            f"site: Site {i}, address: 192.0.2.{i + 10}}}"
        )
    return parse_inventory("\n".join(lines) + "\n", source="scenario.yaml", fmt="yaml")


class Scenario:
    """One ``DetectorService`` over a SQLite file, driven cycle by cycle."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        inventory: Inventory,
        clock: FakeClock | None = None,
        **overrides: Any,
    ) -> None:
        self.clock = clock or FakeClock()
        self.inventory = inventory
        self.settings = Settings(**overrides)
        self.database = tmp_path / "nms.db"
        self._bus = InProcessBus()
        self._applied = 0  # batches the detector has applied and saved
        self._steps = 0  # batches and ticks done (``after_each``)
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._engine = make_engine(f"sqlite+aiosqlite:///{self.database}")
        await migrate_all(self._engine)
        self.sessionmaker = make_sessionmaker(self._engine)
        await sync_inventory(self.sessionmaker, self.inventory)
        self.cases: CaseServices = build_case_services(self.settings, self.sessionmaker, self.clock)
        self.service = DetectorService(
            settings=self.settings,
            clock=self.clock,
            sessionmaker=self.sessionmaker,
            sink=self.cases.incidents,
            inventory=self.inventory,
            batches=self._batches,
            skip=_NoProbes(),
            after_each=self._step_done,
        )
        await self.service.__aenter__()
        self._task = asyncio.create_task(self.service.run(), name="detector-service")
        # Time may move only once the loops wait on the clock (the tick, maintenance).
        async with asyncio.timeout(_WAIT):
            while self.clock.sleepers < 2:  # noqa: ASYNC110 - a count, no event to wait on
                await asyncio.sleep(0.001)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.service.__aexit__(exc_type, exc, tb)
        await self._engine.dispose()

    async def _step_done(self) -> None:
        async with self._progress:
            self._steps += 1
            self._progress.notify_all()

    async def _batches(self) -> AsyncIterator[Batch]:
        async for batch in self._bus.batches():
            yield batch
            # Resumed once the detector has applied and saved the batch.
            async with self._progress:
                self._applied += 1
                self._progress.notify_all()

    # -- driving ----------------------------------------------------------------------

    async def cycle(
        self, answers: Mapping[str, bool] | None = None, *, default: bool = True
    ) -> None:
        """One probe cycle: time moves one interval (the detector ticks), then every
        NTU's burst arrives (``answers`` says which fail; the others answer as
        ``default`` says)."""
        await self._advance(INTERVAL)
        answers = answers or {}
        results = tuple(
            _burst(spec.id, spec.address, self.clock, answers.get(spec.id, default))
            for spec in self.inventory.ntus
        )
        target = self._applied + 1
        await self._bus.publish(PingBatch(results=results))
        async with asyncio.timeout(_WAIT), self._progress:
            await self._progress.wait_for(lambda: self._applied >= target)

    async def cycles(self, count: int, answers: Mapping[str, bool] | None = None) -> None:
        for _ in range(count):
            await self.cycle(answers)

    async def silence(self, duration: timedelta, *, step: timedelta = INTERVAL) -> None:
        """No probe data at all for ``duration`` (the probes stopped); ticks every ``step``."""
        for _ in range(int(duration / step)):
            await self._advance(step)

    async def _advance(self, delta: timedelta) -> None:
        """Move time by ``delta`` (more than one tick period) and wait for the tick it
        wakes to be done."""
        target = self._steps + 1
        self.clock.advance(delta)
        async with asyncio.timeout(_WAIT), self._progress:
            await self._progress.wait_for(lambda: self._steps >= target)

    # -- looking ----------------------------------------------------------------------

    def status(self, ntu_id: str) -> Status:
        return self.service.detector.ntus[ntu_id].state.status

    async def open_cases(self) -> list[Any]:
        from caseapi.cases.repository import CaseFilters

        page = await self.cases.cases.list_cases(filters=CaseFilters(), limit=500)
        return sorted(page.items, key=lambda case: case.id)


class _NoProbes:
    """The skip target of a scenario: its probe cycles are played by the test."""

    def set_skip(self, skip: frozenset[str]) -> None:
        self.skipped = skip


def _burst(key: str, address: Any, clock: FakeClock, ok: bool) -> PingResult:
    return PingResult(
        key=key,
        address=ipaddress.ip_address(str(address)),
        started_at=clock.now(),
        sent=5,
        received=5 if ok else 0,
        rtts=(0.010, 0.011, 0.012, 0.010, 0.011) if ok else (),
    )
