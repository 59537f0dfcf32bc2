"""Upstream nodes through the detector, the real case service and database (SQLite and
PostgreSQL), on a fake clock: one upstream incident per node outage, one linked case
per affected customer, resolution flowing down, and the ordering rule."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import pytest
from sqlalchemy import select

from caseapi.cases.models import Case
from caseapi.cases.service import CaseService
from caseapi.incidents import IncidentService
from caseapi.ntus.models import Node
from nms.clock import FakeClock
from nms.detector.availability import Rules, Status
from nms.detector.engine import Detector
from nms.detector.settings import DegradedSettings
from nms.inventory.loader import parse_inventory
from nms.inventory.model import Inventory
from probes.observation import PingResult
from tests.caseapi.conftest import Database
from tests.nms.detector.helpers import pings, store_inventory

RULES = Rules(down_after=timedelta(minutes=10), restore_after=2, stale_after=timedelta(minutes=2))
INTERVAL = timedelta(seconds=30)
CUSTOMERS = [f"c{i}" for i in range(5)]
NTUS = [f"n{i:02d}" for i in range(50)]
NODES = ["pop1", "agg1"]
EVERYTHING = frozenset([*NODES, *NTUS])


def inventory() -> Inventory:
    lines = ["customers:"]
    lines += [f"  - {{id: {c}, name: Customer {c}}}" for c in CUSTOMERS]
    lines += [
        "nodes:",
        "  - {id: pop1, kind: pop, address: 192.0.2.250, site: London}",
        "  - {id: agg1, kind: aggregation, address: 192.0.2.251, parent: pop1}",
        "ntus:",
    ]
    lines += [
        f"  - {{id: {n}, customer: c{i % 5}, address: 198.51.100.{i + 1}, parent: agg1}}"
        for i, n in enumerate(NTUS)
    ]
    return parse_inventory("\n".join(lines) + "\n", source="inv.yaml", fmt="yaml")


class Harness:
    def __init__(self, db: Database, clock: FakeClock) -> None:
        self.db = db
        self.clock = clock
        self.service = IncidentService(sessionmaker=db.sessionmaker, clock=clock)
        self.case_service = CaseService(sessionmaker=db.sessionmaker, clock=clock)
        self.detector = Detector(
            rules=RULES,
            degraded=DegradedSettings(),
            clock=clock,
            sink=self.service,
            sessionmaker=db.sessionmaker,
        )

    async def cycle(self, down: frozenset[str] | set[str]) -> None:
        """One probe cycle over nodes and NTUs (children listed first, on purpose)."""
        keys = [*NTUS, *reversed(NODES)]
        await self.detector.observe(
            pings(
                PingResult(
                    key=k,
                    address=ipaddress.ip_address("192.0.2.1"),
                    started_at=self.clock.now(),
                    sent=5,
                    received=0 if k in down else 5,
                    rtts=() if k in down else (0.001,) * 5,
                )
                for k in keys
            )
        )
        self.clock.advance(INTERVAL)
        await self.detector.tick()

    async def cases(self) -> list[Case]:
        async with self.db.sessionmaker() as session:
            return list((await session.scalars(select(Case).order_by(Case.id))).all())

    def status(self, ident: str) -> Status:
        tracked = self.detector.ntus.get(ident) or self.detector.nodes[ident]
        return tracked.state.status


@pytest.fixture
async def harness(database: Database) -> Harness:
    clock = FakeClock()
    await store_inventory(database.sessionmaker, inventory())
    h = Harness(database, clock)
    await h.detector.load(inventory())
    await h.cycle(set())
    return h


async def _node_down(harness: Harness, cycles: int = 25) -> None:
    for _ in range(cycles):
        await harness.cycle(EVERYTHING)


async def test_nodes_are_stored_and_tracked(harness: Harness):
    async with harness.db.sessionmaker() as session:
        nodes = {n.id: n for n in (await session.scalars(select(Node))).all()}
    assert set(nodes) == {"pop1", "agg1"}
    assert nodes["agg1"].parent == "pop1"
    assert nodes["pop1"].kind == "pop"
    assert set(harness.detector.nodes) == {"pop1", "agg1"}
    assert harness.status("pop1") == Status.UP


async def test_node_down_opens_one_upstream_case_and_one_linked_case_per_customer(
    harness: Harness,
):
    # Node, aggregation and all 50 NTUs fail in the same cycles: the children open
    # nothing of their own.
    for _ in range(20):
        await harness.cycle(EVERYTHING)
        assert await harness.cases() == []
    await _node_down(harness, 5)
    cases = await harness.cases()
    parents = [c for c in cases if c.dedup_key == "node:pop1:down"]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.priority == "P1"
    assert parent.customer_id is None
    assert parent.ntu_id == "pop1"
    assert parent.parent_case_id is None
    assert {a["ntu"] for a in parent.affected or []} == set(NTUS)
    assert "50 NTUs of 5 customers" in parent.summary
    linked = [c for c in cases if c is not parent]
    assert len(linked) == 5  # no unlinked P1, no case for agg1
    assert {c.customer_id for c in linked} == set(CUSTOMERS)
    for case in linked:
        assert case.parent_case_id == parent.id
        assert case.dedup_key == f"node:pop1:down:customer:{case.customer_id}"
        assert case.priority == "P1"
        assert "10 of your NTUs" in case.summary
    assert harness.status("pop1") == Status.DOWN
    assert harness.status("agg1") == Status.UNREACHABLE
    assert all(harness.status(n) == Status.UNREACHABLE for n in NTUS)
    ref, children = await harness.case_service.get_related(parent)
    assert ref is None
    assert sorted(children) == sorted(c.ref for c in linked)
    assert await harness.case_service.get_related(linked[0]) == (parent.ref, [])


async def test_restoring_the_node_solves_the_parent_and_its_linked_cases(harness: Harness):
    await _node_down(harness)
    back = harness.clock.now()
    await harness.cycle(set())
    await harness.cycle(set())
    cases = await harness.cases()
    assert len(cases) == 6
    assert {c.status for c in cases} == {"solved"}
    assert {c.restored_at for c in cases} == {back}
    assert all(harness.status(n) == Status.UP for n in [*NODES, *NTUS])
    for _ in range(25):
        await harness.cycle(set())
    assert len(await harness.cases()) == 6


async def test_an_ntu_still_down_after_the_node_recovers_gets_its_own_linked_p1(
    harness: Harness,
):
    await _node_down(harness)
    parent = (await harness.cases())[0]
    await harness.cycle({"n07"})
    await harness.cycle({"n07"})  # the node is up again: restored
    restored = harness.clock.now() - INTERVAL
    assert harness.status("pop1") == Status.UP
    assert all(c.status == "solved" for c in await harness.cases())
    # Its own clock starts at the node's restoration: nothing before down_after.
    while harness.clock.now() < restored + RULES.down_after:
        await harness.cycle({"n07"})
        assert len(await harness.cases()) == 6
        assert harness.status("n07") == Status.SUSPECT
    await harness.cycle({"n07"})
    cases = await harness.cases()
    assert len(cases) == 7
    own = cases[-1]
    assert own.dedup_key == "ntu:n07:down"
    assert own.customer_id == "c2"
    assert own.parent_case_id == parent.id
    assert own.status == "new"
    assert own.outage_start == restored
    assert harness.status("n07") == Status.DOWN


async def test_children_failing_before_the_node_wait_for_its_verdict(harness: Harness):
    # The NTUs fail 5 minutes before the node: their own down_after passes while the
    # node is still suspect, and they must wait for its verdict.
    for _ in range(10):
        await harness.cycle(set(NTUS))
    for _ in range(10):
        await harness.cycle(EVERYTHING)
        assert await harness.cases() == []
        assert all(harness.status(n) == Status.SUSPECT for n in NTUS)
    await _node_down(harness, 12)
    cases = await harness.cases()
    assert [c.dedup_key for c in cases if c.parent_case_id is None] == ["node:pop1:down"]
    assert len(cases) == 6


async def test_children_fail_while_the_node_stays_up_open_their_own_cases(harness: Harness):
    # The verdict is "the node is fine": the children's own clocks decide.
    for _ in range(21):
        await harness.cycle({"n01", "n02"})
    cases = await harness.cases()
    assert sorted(c.dedup_key or "" for c in cases) == ["ntu:n01:down", "ntu:n02:down"]
    assert all(c.parent_case_id is None for c in cases)


async def test_a_restart_during_the_node_outage_opens_nothing_more(harness: Harness):
    await _node_down(harness)
    restarted = Detector(
        rules=RULES,
        degraded=DegradedSettings(),
        clock=harness.clock,
        sink=harness.service,
        sessionmaker=harness.db.sessionmaker,
    )
    await restarted.load(inventory())
    harness.detector = restarted
    assert harness.status("pop1") == Status.DOWN
    assert harness.status("n00") == Status.UNREACHABLE
    await _node_down(harness, 25)
    assert len(await harness.cases()) == 6
    await harness.cycle(set())
    await harness.cycle(set())
    assert {c.status for c in await harness.cases()} == {"solved"}


async def test_an_ntu_as_parent_covers_its_children_with_its_own_case(database: Database):
    # The pre-existing NTU-behind-NTU case: no upstream incident, the parent NTU's own
    # P1 covers its children; a child still down afterwards links to that case.
    text = """\
customers:
  - {id: c0, name: C0}
ntus:
  - {id: hub, customer: c0, address: 192.0.2.1}
  - {id: leaf, customer: c0, address: 192.0.2.2, parent: hub}
"""
    inv = parse_inventory(text, source="inv.yaml", fmt="yaml")
    await store_inventory(database.sessionmaker, inv)
    clock = FakeClock()
    h = Harness(database, clock)
    await h.detector.load(inv)

    async def cycle(down: set[str]) -> None:
        await h.detector.observe(
            pings(
                PingResult(
                    key=k,
                    address=ipaddress.ip_address("192.0.2.1"),
                    started_at=clock.now(),
                    sent=1,
                    received=0 if k in down else 1,
                    rtts=() if k in down else (0.001,),
                )
                for k in ("leaf", "hub")
            )
        )
        clock.advance(INTERVAL)
        await h.detector.tick()

    await cycle(set())
    for _ in range(25):
        await cycle({"hub", "leaf"})
    cases = await h.cases()
    assert [c.dedup_key for c in cases] == ["ntu:hub:down"]
    assert h.detector.ntus["leaf"].state.status == Status.UNREACHABLE
    for _ in range(25):
        await cycle({"leaf"})
    cases = await h.cases()
    assert [c.dedup_key for c in cases] == ["ntu:hub:down", "ntu:leaf:down"]
    assert cases[1].parent_case_id == cases[0].id
