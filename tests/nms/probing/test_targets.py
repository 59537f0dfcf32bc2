"""TargetPlanner and MaintenanceWatcher: what is probed, and the refresh period."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from nms.clock import FakeClock
from nms.inventory.loader import InventoryCache, parse_inventory
from nms.probing.targets import MaintenanceWatcher, TargetPlanner
from probes.observation import PingTarget
from tests.caseapi.conftest import Database

INVENTORY = parse_inventory(
    """\
customers:
  - {id: acme, name: ACME}
nodes:
  - {id: olt-1, kind: pop, address: 192.0.2.100}
ntus:
  - {id: n1, customer: acme, address: 192.0.2.1, parent: olt-1, snmp: {community: public}}
  - {id: n2, customer: acme, address: 192.0.2.2, parent: olt-1}
""",
    source="inv.yaml",
    fmt="yaml",
)


class Loop:
    """Stands in for both probe loops: remembers the last targets."""

    def __init__(self) -> None:
        self.targets: list[Any] = []

    def set_targets(self, targets: Sequence[Any]) -> None:
        self.targets = list(targets)


class Recorder:
    """The watcher's detector and planner: records every call."""

    def __init__(self) -> None:
        self.maintenance: list[dict[str, tuple[str, datetime]]] = []
        self.skips: list[frozenset[str]] = []

    def set_maintenance(self, covered: dict[str, tuple[str, datetime]]) -> None:
        self.maintenance.append(covered)

    def set_skip(self, skip: frozenset[str]) -> None:
        self.skips.append(skip)


async def asleep(clock: FakeClock) -> None:
    """Until the watcher waits on the clock (its queries run on real time meanwhile)."""
    async with asyncio.timeout(10):
        while clock.sleepers == 0:  # noqa: ASYNC110 - the sleeper count is the signal
            await asyncio.sleep(0.001)


def test_the_planner_leaves_out_the_skip_set() -> None:
    icmp, snmp = Loop(), Loop()
    planner = TargetPlanner(inventory=INVENTORY, icmp=icmp, snmp=snmp)  # type: ignore[arg-type]
    assert [t.key for t in icmp.targets] == ["olt-1", "n1", "n2"]
    assert icmp.targets[0] == PingTarget(key="olt-1", address=ipaddress.ip_address("192.0.2.100"))
    assert [n.id for n in snmp.targets] == ["n1", "n2"]
    planner.set_skip(frozenset({"n1", "olt-1"}))
    assert [t.key for t in icmp.targets] == ["n2"]
    assert [n.id for n in snmp.targets] == ["n2"]
    planner.set_inventory(INVENTORY)  # a reload keeps the skip set
    assert [t.key for t in icmp.targets] == ["n2"]


async def test_the_watcher_refreshes_once_per_period_of_the_clock(database: Database) -> None:
    clock = FakeClock()
    seen = Recorder()
    watcher = MaintenanceWatcher(
        sessionmaker=database.sessionmaker, detector=seen, planner=seen, clock=clock
    )
    task = asyncio.create_task(watcher.run(timedelta(minutes=1)))
    try:
        await asleep(clock)
        assert seen.maintenance == [{}] and seen.skips == [frozenset()]
        await clock.run_for(59)
        assert len(seen.maintenance) == 1
        clock.advance(1)
        await clock.settle()
        await asleep(clock)
        assert len(seen.maintenance) == 2
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_failed_refresh_keeps_the_view_and_retries_next_period() -> None:
    clock = FakeClock()
    seen = Recorder()
    attempts: list[float] = []

    def broken() -> Any:
        attempts.append(clock.monotonic())
        raise OSError("database gone")

    watcher = MaintenanceWatcher(sessionmaker=broken, detector=seen, planner=seen, clock=clock)  # type: ignore[arg-type]
    task = asyncio.create_task(watcher.run(timedelta(seconds=30)))
    try:
        await clock.run_for(75)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert attempts == [0.0, 30.0, 60.0]
    assert seen.maintenance == [] and seen.skips == []


def test_a_reload_makes_new_ping_targets_for_the_changed_entries_only() -> None:
    text = """\
customers:
  - {id: acme, name: ACME}
ntus:
  - {id: n1, customer: acme, address: 192.0.2.1}
  - {id: n2, customer: acme, address: 192.0.2.2}
"""
    cache = InventoryCache()
    icmp = Loop()
    planner = TargetPlanner(
        inventory=cache.parse(text, source="inv.yaml", secrets=None, languages=None),
        icmp=icmp,  # type: ignore[arg-type]
        snmp=None,
    )
    n1, n2 = icmp.targets
    moved = text.replace("192.0.2.2", "192.0.2.22")
    planner.set_inventory(cache.parse(moved, source="inv.yaml", secrets=None, languages=None))
    assert icmp.targets[0] is n1
    assert icmp.targets[1] == PingTarget(key="n2", address=ipaddress.ip_address("192.0.2.22"))
    planner.set_inventory(cache.parse(text, source="inv.yaml", secrets=None, languages=None))
    assert icmp.targets[1] == n2
