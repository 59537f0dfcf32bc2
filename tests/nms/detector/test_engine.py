"""The detector with the real case service and database, on a fake clock."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from caseapi.cases.models import Case
from caseapi.incidents import IncidentService
from nms.bus.batch import PingBatch
from nms.clock import FakeClock
from nms.detector.availability import Rules, Status
from nms.detector.engine import Detector
from nms.detector.models import DetectorNtuState
from nms.detector.settings import DegradedSettings
from nms.inventory.loader import parse_inventory
from nms.inventory.model import Inventory
from probes.observation import PingResult
from tests.caseapi.conftest import Database
from tests.nms.detector.helpers import Flaky, pings, store_inventory

INVENTORY = """\
customers:
  - {id: acme, name: ACME}
  - {id: gone, name: Expired Ltd, contract_status: expired}
ntus:
  - {id: n1, customer: acme, service_id: S1, site: HQ, address: 192.0.2.1}
  - {id: n2, customer: acme, address: 192.0.2.2}
  - {id: n3, customer: gone, address: 192.0.2.3}
"""
RULES = Rules(down_after=timedelta(minutes=10), restore_after=2, stale_after=timedelta(minutes=2))
INTERVAL = timedelta(seconds=30)


def inventory(text: str = INVENTORY) -> Inventory:
    return parse_inventory(text, source="inv.yaml", fmt="yaml")


def result(clock: FakeClock, ntu: str, ok: bool) -> PingResult:
    return PingResult(
        key=ntu,
        address=ipaddress.ip_address("192.0.2.1"),
        started_at=clock.now(),
        sent=5,
        received=5 if ok else 0,
        rtts=(0.001,) * 5 if ok else (),
    )


class Harness:
    def __init__(self, db: Database, clock: FakeClock) -> None:
        self.db = db
        self.clock = clock
        self.service = IncidentService(sessionmaker=db.sessionmaker, clock=clock)
        self.detector = self.new_detector()

    def new_detector(self, sink: object | None = None) -> Detector:
        return Detector(
            rules=RULES,
            degraded=DegradedSettings(),
            clock=self.clock,
            sink=sink or self.service,  # type: ignore[arg-type]
            sessionmaker=self.db.sessionmaker,
        )

    async def cycle(self, down: set[str], detector: Detector | None = None) -> None:
        """One probe cycle: every NTU answers except ``down``; then the interval passes."""
        d = detector or self.detector
        await d.observe(pings(result(self.clock, n, n not in down) for n in d.ntus))
        self.clock.advance(INTERVAL)
        await d.tick()

    async def cases(self) -> list[Case]:
        async with self.db.sessionmaker() as session:
            return list((await session.scalars(select(Case).order_by(Case.id))).all())


@pytest.fixture
async def harness(database: Database) -> Harness:
    clock = FakeClock()
    await store_inventory(database.sessionmaker, inventory())
    h = Harness(database, clock)
    await h.detector.load(inventory())
    return h


async def test_ten_minutes_down_opens_one_p1_from_the_first_failure(harness: Harness):
    await harness.cycle(set())
    first_failure = harness.clock.now()
    for _ in range(20):  # 0 .. 9.5 minutes of failure
        await harness.cycle({"n1"})
        assert await harness.cases() == []
    await harness.cycle({"n1"})  # the probe at minute 10
    cases = await harness.cases()
    assert len(cases) == 1
    case = cases[0]
    assert case.priority == "P1"
    assert case.outage_start == first_failure
    assert case.detected_at == first_failure + timedelta(minutes=10)
    assert case.customer_id == "acme"
    assert case.service_id == "S1"
    assert case.site == "HQ"
    for _ in range(10):
        await harness.cycle({"n1"})
    assert len(await harness.cases()) == 1
    assert harness.detector.ntus["n1"].state.status == Status.DOWN
    assert harness.detector.ntus["n1"].case_ref == case.ref


async def test_restoration_solves_with_the_first_good_probe_as_end(harness: Harness):
    for _ in range(22):
        await harness.cycle({"n2"})
    back = harness.clock.now()
    await harness.cycle(set())
    assert (await harness.cases())[0].status == "new"  # one good cycle is not enough
    await harness.cycle(set())
    case = (await harness.cases())[0]
    assert case.status == "solved"
    assert case.restored_at == back
    assert case.solved_at is not None
    assert case.monitoring_until == case.solved_at + timedelta(hours=24)


async def test_restart_at_minute_7_opens_at_minute_10_exactly_once(harness: Harness):
    first_failure = harness.clock.now()
    for _ in range(14):  # 7 minutes of failure
        await harness.cycle({"n1"})
    # The process dies; a new one loads the persisted state.
    restarted = harness.new_detector()
    await restarted.load(inventory())
    assert restarted.ntus["n1"].state.status == Status.SUSPECT
    assert restarted.ntus["n1"].state.outage_start == first_failure
    for _ in range(6):
        await harness.cycle({"n1"}, restarted)
        assert await harness.cases() == []
    await harness.cycle({"n1"}, restarted)  # minute 10
    cases = await harness.cases()
    assert len(cases) == 1
    assert cases[0].detected_at == first_failure + timedelta(minutes=10)
    # And once more after the case exists: no duplicate, same case.
    again = harness.new_detector()
    await again.load(inventory())
    assert again.ntus["n1"].case_ref == cases[0].ref
    for _ in range(4):
        await harness.cycle({"n1"}, again)
    assert len(await harness.cases()) == 1


async def test_a_failing_case_service_is_retried_without_duplicates(harness: Harness):
    flaky = Flaky(harness.service)
    detector = harness.new_detector(flaky)
    await detector.load(inventory())
    start = harness.clock.now()
    flaky.down = True
    for _ in range(21):  # confirmed at minute 10 while the service is down
        await harness.cycle({"n1"}, detector)
    assert await harness.cases() == []
    assert detector.ntus["n1"].state.status == Status.DOWN
    assert detector.ntus["n1"].pending_open is not None
    assert detector.stats.case_errors >= 2  # at confirmation, then at every tick
    flaky.down = False
    await harness.cycle({"n1"}, detector)
    await harness.cycle({"n1"}, detector)
    (case,) = await harness.cases()
    assert case.outage_start == start
    assert detector.ntus["n1"].case_ref == case.ref


async def test_an_outage_that_ends_while_the_case_service_is_down_still_gets_its_case(
    harness: Harness,
):
    flaky = Flaky(harness.service)
    detector = harness.new_detector(flaky)
    await detector.load(inventory())
    start = harness.clock.now()
    for _ in range(20):
        await harness.cycle({"n1"}, detector)
    flaky.down = True
    await harness.cycle({"n1"}, detector)  # minute 10: confirmed, no case possible
    back = harness.clock.now()
    for _ in range(4):  # the NTU comes back before the service does
        await harness.cycle(set(), detector)
    flaky.down = False
    await harness.cycle(set(), detector)
    (case,) = await harness.cases()
    assert case.outage_start == start
    assert case.status == "solved"
    assert case.restored_at == back


async def test_a_pending_case_survives_a_restart(harness: Harness):
    flaky = Flaky(harness.service)
    detector = harness.new_detector(flaky)
    await detector.load(inventory())
    start = harness.clock.now()
    for _ in range(20):
        await harness.cycle({"n1"}, detector)
    flaky.down = True
    await harness.cycle({"n1"}, detector)
    back = harness.clock.now()
    await harness.cycle(set(), detector)
    detector = harness.new_detector(flaky)  # restarted while the service is still down
    await detector.load(inventory())
    assert detector.ntus["n1"].pending_open is not None
    flaky.down = False
    for _ in range(3):
        await harness.cycle(set(), detector)
    (case,) = await harness.cases()
    assert case.outage_start == start
    assert case.status == "solved"
    # The restore that was pending is not saved: the end is the first good probe the
    # restarted detector saw (documented on Outage.pending_restore).
    assert case.restored_at is not None
    assert case.restored_at >= back


async def test_a_case_committed_just_before_a_crash_is_adopted(harness: Harness):
    for _ in range(21):
        await harness.cycle({"n1"})
    (case,) = await harness.cases()
    # Simulate the crash window: the case exists, the NTU's saved state predates it.
    async with harness.db.sessionmaker() as session:
        await session.execute(
            update(DetectorNtuState)
            .where(DetectorNtuState.ntu_id == "n1")
            .values(status="suspect", case_ref=None, case_pending=False)
        )
        await session.commit()
    detector = harness.new_detector()
    await detector.load(inventory())
    assert detector.ntus["n1"].case_ref == case.ref
    for _ in range(3):
        await harness.cycle(set(), detector)
    (case,) = await harness.cases()
    assert case.status == "solved"


async def test_no_data_means_unknown_and_no_case(harness: Harness):
    await harness.cycle({"n1"})
    for _ in range(40):  # 20 minutes without any probe result
        harness.clock.advance(INTERVAL)
        await harness.detector.tick()
    assert all(t.state.status == Status.UNKNOWN for t in harness.detector.ntus.values())
    assert await harness.cases() == []


async def test_expired_contract_is_recorded_and_flagged(harness: Harness):
    for _ in range(22):
        await harness.cycle({"n3"})
    (case,) = await harness.cases()
    assert case.customer_id == "gone"
    assert case.no_support is True


async def test_inventory_change_keeps_state(harness: Harness):
    for _ in range(4):
        await harness.cycle({"n1"})
    start = harness.detector.ntus["n1"].state.outage_start
    smaller = inventory(INVENTORY.replace("  - {id: n2, customer: acme, address: 192.0.2.2}\n", ""))
    diff = await store_inventory(harness.db.sessionmaker, smaller)
    assert diff.removed == ("n2",)
    harness.detector.set_inventory(smaller)
    assert set(harness.detector.ntus) == {"n1", "n3"}
    assert harness.detector.ntus["n1"].state.outage_start == start
    harness.detector.set_inventory(inventory())
    await store_inventory(harness.db.sessionmaker, inventory())
    # n2 left and came back: it resumes its state instead of starting unknown.
    assert harness.detector.ntus["n2"].state.status == Status.UP
    async with harness.db.sessionmaker() as session:
        count = await session.scalar(select(func.count()).select_from(Case))
    assert count == 0


async def test_maintenance_mute_suppresses_the_case_until_the_window_ends(harness: Harness):
    await harness.cycle(set())
    window_end = harness.clock.now() + timedelta(minutes=15)
    harness.detector.set_maintenance({"n1": ("mute", window_end)})
    for _ in range(30):  # down for the whole window
        await harness.cycle({"n1"})
    assert await harness.cases() == []
    harness.detector.set_maintenance({})
    for _ in range(21):  # still down 10 minutes after the window
        await harness.cycle({"n1"})
    (case,) = await harness.cases()
    # The outage counts from the last muted probe, just before the window's end.
    assert case.outage_start is not None
    assert window_end - INTERVAL <= case.outage_start < window_end
    assert case.detected_at is not None
    assert case.detected_at - case.outage_start >= timedelta(minutes=10)


async def test_late_results_are_not_missing_data(harness: Harness):
    """Sweeps that overrun (CPU short) deliver each NTU's result late: no ``unknown``
    until a sweep stamped ``stale_after`` later went by without the NTU."""
    detector, clock = harness.detector, harness.clock
    t0 = clock.now()

    def stamped(ntus: list[str], at: timedelta) -> PingBatch:
        return pings(replace(result(clock, n, True), started_at=t0 + at) for n in ntus)

    await detector.observe(stamped(["n1", "n2", "n3"], timedelta(0)))
    # The next sweep started at +60 s; at +125 s only n1's result has been applied.
    clock.advance(timedelta(seconds=125))
    await detector.observe(stamped(["n1"], timedelta(seconds=60)))
    await detector.tick()
    assert {t.state.status for t in detector.ntus.values()} == {Status.UP}
    clock.advance(timedelta(seconds=1))
    await detector.observe(stamped(["n2", "n3"], timedelta(seconds=62)))
    # A sweep stamped 2 min after n3's last result was applied without it: stale.
    clock.advance(timedelta(seconds=100))
    await detector.observe(stamped(["n1", "n2"], timedelta(seconds=182)))
    await detector.tick()
    assert detector.ntus["n3"].state.status == Status.UNKNOWN
    assert detector.ntus["n3"].state.since == t0 + timedelta(seconds=182)
    assert detector.ntus["n2"].state.status == Status.UP
    # The data stops (running 44 s late): stale, stale_after after the last result
    # plus that lag.
    clock.advance(t0 + timedelta(seconds=182 + 120 + 43) - clock.now())
    await detector.tick()
    assert detector.ntus["n2"].state.status == Status.UP
    clock.advance(timedelta(seconds=1))
    await detector.tick()
    assert {t.state.status for t in detector.ntus.values()} == {Status.UNKNOWN}
    assert await harness.cases() == []
