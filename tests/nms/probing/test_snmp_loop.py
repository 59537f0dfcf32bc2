"""SnmpLoop on a fake clock: a poll per interval, an extra one at once on a trap."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import pytest

from nms.bus.batch import SnmpBatch
from nms.clock import FakeClock
from nms.inventory.loader import InventoryCache, parse_inventory
from nms.probing.settings import SnmpSettings
from nms.probing.snmp_loop import SnmpLoop
from probes.observation import SnmpResult
from probes.snmp.target import SnmpTarget

INVENTORY_TEXT = """\
customers:
  - {id: acme, name: ACME}
ntus:
  - {id: n1, customer: acme, address: 192.0.2.1, snmp: {community: public}}
  - {id: n2, customer: acme, address: 192.0.2.2, snmp: {community: public}}
  - {id: n3, customer: acme, address: 192.0.2.3}
"""
INVENTORY = parse_inventory(INVENTORY_TEXT, source="inv.yaml", fmt="yaml")


class FakePoller:
    """Each poll takes ``duration`` on the clock; records when and whom it polled."""

    def __init__(self, clock: FakeClock, duration: float = 1.0) -> None:
        self.clock = clock
        self.duration = duration
        self.polls: list[tuple[float, list[str]]] = []
        self.forgotten: list[str] = []

    async def poll(self, targets: Sequence[SnmpTarget]) -> list[SnmpResult]:
        self.polls.append((self.clock.monotonic(), [t.key for t in targets]))
        await self.clock.sleep(self.duration)
        return [SnmpResult(t.key, t.address, self.clock.now(), reachable=True) for t in targets]

    def forget(self, key: str) -> None:
        self.forgotten.append(key)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@contextlib.asynccontextmanager
async def running(loop: SnmpLoop) -> AsyncIterator[list[SnmpBatch]]:
    published: list[SnmpBatch] = []

    async def publish(batch: SnmpBatch) -> None:
        published.append(batch)

    loop._publish = publish
    task = asyncio.create_task(loop.run())
    try:
        yield published
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def snmp_loop(clock: FakeClock, poller: FakePoller) -> SnmpLoop:
    async def nowhere(batch: SnmpBatch) -> None:
        raise AssertionError("replaced by running()")

    loop = SnmpLoop(
        poller=poller,
        settings=SnmpSettings(interval=timedelta(seconds=60)),
        publish=nowhere,
        clock=clock,
    )
    loop.set_targets(INVENTORY.ntus)
    return loop


async def test_every_ntu_with_snmp_is_polled_once_per_interval(clock: FakeClock) -> None:
    poller = FakePoller(clock)
    loop = snmp_loop(clock, poller)
    async with running(loop) as published:
        await clock.run_for(150)
    assert poller.polls == [(0.0, ["n1", "n2"]), (60.0, ["n1", "n2"]), (120.0, ["n1", "n2"])]
    assert loop.cycles == 3 and loop.errors == 0
    assert [[r.key for r in b.results] for b in published] == [["n1", "n2"]] * 3


async def test_poll_now_polls_that_ntu_at_once_and_keeps_the_rate(clock: FakeClock) -> None:
    poller = FakePoller(clock)
    loop = snmp_loop(clock, poller)
    async with running(loop) as published:
        await clock.run_for(10)
        loop.poll_now("n2")  # a trap said something happened
        loop.poll_now("n3")  # no snmp section: ignored
        await clock.settle()
        await clock.run_for(55)
    assert poller.polls == [(0.0, ["n1", "n2"]), (10.0, ["n2"]), (60.0, ["n1", "n2"])]
    assert [len(b.results) for b in published] == [2, 1, 2]
    assert clock.sleepers == 0  # no wait on the clock is left behind


async def test_a_failed_poll_is_counted_and_retried_next_interval(clock: FakeClock) -> None:
    class Failing(FakePoller):
        async def poll(self, targets: Sequence[SnmpTarget]) -> list[SnmpResult]:
            if not self.polls:
                self.polls.append((self.clock.monotonic(), []))
                raise OSError("socket gone")
            return await super().poll(targets)

    poller = Failing(clock)
    loop = snmp_loop(clock, poller)
    async with running(loop) as published:
        await clock.run_for(65)
    assert [at for at, _ in poller.polls] == [0.0, 60.0]
    assert loop.errors == 1 and len(published) == 1


def test_removed_ntus_are_forgotten(clock: FakeClock) -> None:
    poller = FakePoller(clock)
    loop = snmp_loop(clock, poller)
    loop.set_targets([n for n in INVENTORY.ntus if n.id != "n1"])
    assert poller.forgotten == ["n1"]


def test_a_reload_rebuilds_the_targets_of_the_changed_ntus_only(clock: FakeClock) -> None:
    """A reload reuses the specs of unchanged entries (``InventoryCache``): their
    targets stand; a changed entry's spec is new, and so is its target."""
    cache = InventoryCache()
    text = INVENTORY_TEXT
    loop = snmp_loop(clock, FakePoller(clock))
    loop.set_targets(cache.parse(text, source="inv.yaml", secrets=None, languages=None).ntus)
    before = dict(loop._targets)
    changed = text.replace(
        "192.0.2.2, snmp: {community: public}", "192.0.2.2, snmp: {community: c2}"
    )
    loop.set_targets(cache.parse(changed, source="inv.yaml", secrets=None, languages=None).ntus)
    after = dict(loop._targets)
    assert after["n1"] is before["n1"]
    assert after["n2"] is not before["n2"] and after["n2"].community == "c2"
    assert loop.trap_source(after["n2"].address) == ("n2", "c2")
