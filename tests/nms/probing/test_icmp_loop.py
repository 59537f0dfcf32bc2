"""ProbeLoop on a fake clock: cycles at a fixed rate, overruns, failures, batching."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import pytest

from nms.bus.batch import PingBatch
from nms.clock import FakeClock
from nms.noc.probe_metrics import ProbeStats
from nms.probing.icmp_loop import ProbeLoop
from nms.probing.settings import IcmpSettings
from probes.observation import PingResult, PingTarget

TARGETS = [PingTarget(key=f"ntu-{i}", address=ipaddress.ip_address(f"192.0.2.{i}")) for i in (1, 2)]


class FakeSweeper:
    """Each sweep yields one result per target, then takes ``duration`` on the clock."""

    def __init__(self, clock: FakeClock, duration: float) -> None:
        self.clock = clock
        self.duration = duration
        self.starts: list[float] = []
        self.fail_at: set[int] = set()  # sweep numbers (from 0) that raise

    async def sweep(self, targets: Sequence[PingTarget]) -> AsyncIterator[PingResult]:
        number = len(self.starts)
        self.starts.append(self.clock.monotonic())
        if number in self.fail_at:
            raise OSError("socket gone")
        for target in targets:
            yield PingResult(target.key, target.address, self.clock.now(), 1, 1, (0.001,))
        await self.clock.sleep(self.duration)  # the last bursts' timeouts


class Published:
    def __init__(self) -> None:
        self.batches: list[PingBatch] = []

    async def __call__(self, batch: PingBatch) -> None:
        self.batches.append(batch)


@contextlib.asynccontextmanager
async def running(loop: ProbeLoop) -> AsyncIterator[None]:
    task = asyncio.create_task(loop.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def probe_loop(
    clock: FakeClock, sweeper: FakeSweeper, published: Published, stats: ProbeStats
) -> ProbeLoop:
    loop = ProbeLoop(
        sweeper=sweeper,
        settings=IcmpSettings(interval=timedelta(seconds=30)),
        publish=published,
        stats=stats,
        clock=clock,
    )
    loop.set_targets(TARGETS)
    return loop


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_cycles_start_at_the_interval(clock: FakeClock) -> None:
    sweeper, published, stats = FakeSweeper(clock, duration=2.0), Published(), ProbeStats()
    async with running(probe_loop(clock, sweeper, published, stats)):
        await clock.run_for(95)
    assert sweeper.starts == [0.0, 30.0, 60.0, 90.0]
    assert stats.cycles == 4 and stats.overruns == 0 and stats.errors == 0
    assert stats.targets == 2 and stats.last_cycle_seconds == 2.0
    assert [[r.key for r in b.results] for b in published.batches] == [["ntu-1", "ntu-2"]] * 4


async def test_a_cycle_longer_than_the_interval_is_an_overrun(clock: FakeClock) -> None:
    sweeper, published, stats = FakeSweeper(clock, duration=40.0), Published(), ProbeStats()
    async with running(probe_loop(clock, sweeper, published, stats)):
        await clock.run_for(125)
    # The next cycle starts at once after an overrun; the rate is measured from there.
    assert sweeper.starts == [0.0, 40.0, 80.0, 120.0]
    assert stats.cycles == 3 and stats.overruns == 3
    assert stats.last_cycle_seconds == 40.0


async def test_a_failed_cycle_is_counted_and_the_rate_kept(clock: FakeClock) -> None:
    sweeper, published, stats = FakeSweeper(clock, duration=1.0), Published(), ProbeStats()
    sweeper.fail_at = {1}
    async with running(probe_loop(clock, sweeper, published, stats)):
        await clock.run_for(65)
    assert sweeper.starts == [0.0, 30.0, 60.0]
    assert stats.cycles == 3 and stats.errors == 1
    assert len(published.batches) == 2


async def test_results_go_out_in_small_batches_as_they_complete(clock: FakeClock) -> None:
    class Trickle(FakeSweeper):
        async def sweep(self, targets: Sequence[PingTarget]) -> AsyncIterator[PingResult]:
            self.starts.append(self.clock.monotonic())
            for i in range(600):
                if i == 300:
                    await self.clock.sleep(1.5)  # the dead NTUs' timeouts
                yield PingResult(f"ntu-{i}", TARGETS[0].address, self.clock.now(), 1, 1, (0.1,))

    sweeper, published, stats = Trickle(clock, 0.0), Published(), ProbeStats()
    async with running(probe_loop(clock, sweeper, published, stats)):
        await clock.run_for(2)
    # At most 256 at once; the first result after the pause flushes what waited.
    assert [len(b.results) for b in published.batches] == [256, 45, 256, 43]
    assert all(isinstance(b, PingBatch) for b in published.batches)
