"""ICMP + SNMP into one verdict, and the P2 rules, through the detector and case service."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from caseapi.cases.models import Case
from caseapi.incidents import IncidentService
from nms.clock import FakeClock
from nms.detector.availability import Rules, Status
from nms.detector.engine import Detector
from nms.detector.settings import DegradedSettings
from nms.detector.signals import counter_delta, rates, rebooted
from nms.detector.store import load_states
from nms.inventory.loader import parse_inventory
from nms.inventory.model import Inventory
from probes.observation import PingResult, SnmpResult
from tests.caseapi.conftest import Database
from tests.nms.detector.helpers import pings, polls, store_inventory

INVENTORY = """\
customers:
  - {id: acme, name: ACME}
profiles:
  - {id: strict, latency_open: 20ms, latency_clear: 10ms}
ntus:
  - {id: n1, customer: acme, address: 192.0.2.1, snmp: {community: public, wan: {name: wan0}}}
  - {id: n2, customer: acme, address: 192.0.2.2, profile: strict}
"""
RULES = Rules(down_after=timedelta(minutes=10), restore_after=2, stale_after=timedelta(minutes=2))
DEGRADED = DegradedSettings(
    window=timedelta(minutes=5), clear_after=timedelta(minutes=2), flap_window=timedelta(minutes=5)
)
INTERVAL = timedelta(seconds=30)
ADDRESS = ipaddress.ip_address("192.0.2.1")


def inventory() -> Inventory:
    return parse_inventory(INVENTORY, source="inv.yaml", fmt="yaml")


class Harness:
    def __init__(self, db: Database, clock: FakeClock) -> None:
        self.db = db
        self.clock = clock
        self.service = IncidentService(sessionmaker=db.sessionmaker, clock=clock)
        self.detector = self.new_detector()
        self.uptime = 100_000
        self.octets = 0
        self.errors = 0

    def new_detector(self) -> Detector:
        return Detector(
            rules=RULES,
            degraded=DEGRADED,
            clock=self.clock,
            sink=self.service,
            sessionmaker=self.db.sessionmaker,
        )

    def ping(self, ntu: str, received: int = 5, rtt: float = 0.002) -> PingResult:
        return PingResult(
            key=ntu,
            address=ADDRESS,
            started_at=self.clock.now(),
            sent=5,
            received=received,
            rtts=(rtt,) * received,
        )

    def snmp(self, *, reachable: bool = True, oper: int = 1, admin: int = 1) -> SnmpResult:
        self.uptime += int(INTERVAL.total_seconds() * 100)
        self.octets += 1_000_000
        return SnmpResult(
            key="n1",
            address=ADDRESS,
            started_at=self.clock.now(),
            reachable=reachable,
            sys_uptime=self.uptime if reachable else None,
            if_index=3,
            if_oper_status=oper if reachable else None,
            if_admin_status=admin if reachable else None,
            in_octets=self.octets,
            out_octets=self.octets // 2,
            counters_64bit=True,
            in_errors=self.errors,
            out_errors=0,
            in_discards=0,
        )

    async def cycle(
        self,
        *,
        n1: int = 5,
        n2: int = 5,
        snmp: SnmpResult | None = None,
        rtt: float = 0.002,
    ) -> None:
        await self.detector.observe(pings([self.ping("n1", n1), self.ping("n2", n2, rtt)]))
        if snmp is not None:
            await self.detector.observe(polls([snmp]))
        self.clock.advance(INTERVAL)
        await self.detector.tick()

    async def cases(self) -> list[Case]:
        async with self.db.sessionmaker() as session:
            return list((await session.scalars(select(Case).order_by(Case.id))).all())


@pytest.fixture
async def harness(database: Database) -> Harness:
    await store_inventory(database.sessionmaker, inventory())
    h = Harness(database, FakeClock())
    await h.detector.load(inventory())
    return h


async def test_icmp_filtered_while_snmp_answers_is_up_and_flagged(harness: Harness):
    await harness.cycle(snmp=harness.snmp())
    for _ in range(30):  # 15 minutes without a single echo reply
        await harness.cycle(n1=0, snmp=harness.snmp())
    n1 = harness.detector.ntus["n1"]
    assert n1.snmp.icmp_filtered
    assert n1.state.status == Status.UP
    assert await harness.cases() == []
    stored = (await load_states(harness.db.sessionmaker))["n1"]
    assert stored.snmp is not None
    assert stored.snmp.icmp_filtered


async def test_icmp_filtered_ntu_goes_down_when_snmp_stops_too(harness: Harness):
    for _ in range(4):
        await harness.cycle(n1=0, snmp=harness.snmp())
    assert harness.detector.ntus["n1"].snmp.icmp_filtered
    for _ in range(25):
        await harness.cycle(n1=0, snmp=harness.snmp(reachable=False))
    (case,) = await harness.cases()
    assert case.priority == "P1"
    assert case.dedup_key == "ntu:n1:down"


async def test_wan_down_with_management_up_opens_a_p1(harness: Harness):
    await harness.cycle(snmp=harness.snmp())
    start = harness.clock.now()
    for _ in range(22):
        await harness.cycle(snmp=harness.snmp(oper=2))
    (case,) = await harness.cases()
    assert case.priority == "P1"
    assert case.outage_start == start
    assert harness.detector.ntus["n1"].snmp.wan_oper_status == 2


async def test_wan_admin_down_is_not_a_customer_outage(harness: Harness):
    for _ in range(30):
        await harness.cycle(snmp=harness.snmp(oper=2, admin=2))
    assert await harness.cases() == []
    n1 = harness.detector.ntus["n1"]
    assert n1.state.status == Status.UP
    assert n1.snmp.wan_admin_status == 2


async def test_a_reboot_is_recorded_without_a_case(harness: Harness):
    await harness.cycle(snmp=harness.snmp())
    await harness.cycle(snmp=harness.snmp())
    harness.uptime = 500  # the agent restarted: sysUpTime starts again
    await harness.cycle(snmp=harness.snmp())
    n1 = harness.detector.ntus["n1"]
    assert n1.snmp.reboots == 1
    assert n1.snmp.last_reboot_at is not None
    assert await harness.cases() == []
    assert n1.snmp.in_bps is not None  # rates resume after the reboot poll


async def test_sustained_loss_opens_one_p2_and_clears_with_hysteresis(harness: Harness):
    await harness.cycle()
    for _ in range(12):  # 20 % loss for 6 minutes
        await harness.cycle(n2=4)
    (case,) = await harness.cases()
    assert case.priority == "P2"
    assert case.dedup_key == "ntu:n2:degraded"
    assert "packet loss" in case.summary
    for _ in range(6):  # still lossy: no second case
        await harness.cycle(n2=4)
    assert len(await harness.cases()) == 1
    for _ in range(20):  # clean again: the window forgets, then clear_after passes
        await harness.cycle()
    (case,) = await harness.cases()
    assert case.status == "solved"
    assert harness.detector.ntus["n2"].degraded_case_ref is None


async def test_profile_latency_threshold(harness: Harness):
    for _ in range(12):
        await harness.cycle(rtt=0.03)  # 30 ms: over n2's strict profile (20 ms)
    (case,) = await harness.cases()
    assert case.ntu_id == "n2"
    assert "average RTT 30 ms" in case.summary


async def test_interface_errors_open_a_p2(harness: Harness):
    await harness.cycle(snmp=harness.snmp())
    for _ in range(12):
        harness.errors += 300  # 10 errors/s
        await harness.cycle(snmp=harness.snmp())
    (case,) = await harness.cases()
    assert case.ntu_id == "n1"
    assert "interface errors/s" in case.summary


async def test_flapping_opens_a_p2(harness: Harness):
    for i in range(12):
        await harness.cycle(n2=5 if i % 2 == 0 else 0)
    (case,) = await harness.cases()
    assert case.ntu_id == "n2"
    assert "up/down changes" in case.summary


async def test_a_degraded_ntu_that_goes_down_keeps_one_case_now_p1(harness: Harness):
    for _ in range(12):
        await harness.cycle(n2=4)
    (p2,) = await harness.cases()
    assert p2.priority == "P2"
    for _ in range(22):
        await harness.cycle(n2=0)
    cases = await harness.cases()
    assert len(cases) == 1, [(c.ref, c.priority, c.dedup_key) for c in cases]
    assert cases[0].ref == p2.ref
    assert cases[0].priority == "P1"
    assert cases[0].dedup_key == "ntu:n2:down"


async def test_open_p2_survives_a_restart_and_still_clears(harness: Harness):
    for _ in range(12):
        await harness.cycle(n2=4)
    restarted = harness.new_detector()
    await restarted.load(inventory())
    harness.detector = restarted
    assert restarted.ntus["n2"].degraded_case_ref is not None
    for _ in range(6):  # a restart is no evidence of recovery: still open
        await harness.cycle()
    (case,) = await harness.cases()
    assert case.status != "solved"
    for _ in range(10):  # the window fills with clean samples, then clear_after
        await harness.cycle()
    (case,) = await harness.cases()
    assert case.status == "solved"


def test_reboot_versus_wrap():
    assert not rebooted(1000, 4000, 30)
    assert rebooted(500_000, 100, 30)
    # 32-bit TimeTicks wrap after ~497 days: close to the predicted value mod 2**32.
    assert not rebooted(2**32 - 1000, 2000, 30)
    assert rebooted(2**32 - 1000, 900_000, 30)


def test_counter_wraps():
    assert counter_delta(10, 25, bits64=False) == 15
    assert counter_delta(2**32 - 5, 10, bits64=False) == 15
    # A Counter64 does not wrap, and a small Counter32 going back was cleared: no rate.
    assert counter_delta(2**64 - 5, 10, bits64=True) is None
    assert counter_delta(1000, 10, bits64=False) is None


def test_rates_skip_incomparable_polls():
    from datetime import UTC, datetime

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    a = SnmpResult(
        key="x",
        address=ADDRESS,
        started_at=t0,
        reachable=True,
        sys_uptime=1000,
        if_index=1,
        in_octets=0,
        out_octets=0,
        counters_64bit=True,
        in_errors=0,
    )
    b = SnmpResult(
        key="x",
        address=ADDRESS,
        started_at=t0 + timedelta(seconds=10),
        reachable=True,
        sys_uptime=2000,
        if_index=1,
        in_octets=1250,
        out_octets=0,
        counters_64bit=True,
        in_errors=20,
    )
    measured = rates(a, b)
    assert measured is not None
    assert measured.in_bps == 1000.0
    assert measured.errors_per_second == 2.0
    assert rates(a, replace(b, if_index=2)) is None
    assert rates(a, replace(b, sys_uptime=10)) is None  # rebooted in between


async def test_an_ntu_probed_by_snmp_alone_goes_down(database: Database):
    await store_inventory(database.sessionmaker, inventory())
    h = Harness(database, FakeClock())
    h.detector = Detector(
        rules=RULES,
        degraded=DEGRADED,
        clock=h.clock,
        sink=h.service,
        sessionmaker=database.sessionmaker,
        icmp_enabled=False,  # probes.icmp.enabled: false
    )
    await h.detector.load(inventory())
    await h.detector.observe(polls([h.snmp()]))
    for _ in range(22):
        h.clock.advance(INTERVAL)
        await h.detector.observe(polls([h.snmp(reachable=False)]))
        await h.detector.tick()
    (case,) = await h.cases()
    assert case.ntu_id == "n1"
    assert case.priority == "P1"
