"""Mass outages in batches: one case-service call per batch, nothing lost when it fails.

Also what the detector writes: its private state and the public status of the batch's
NTUs, in one report per batch, when they changed (the probe figures of an NTU that stays
up every ``refresh``).
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from caseapi.cases.models import Case
from caseapi.incidents import (
    IncidentOpen,
    IncidentRestore,
    IncidentService,
    NtuStatusUpdate,
    UpstreamOpen,
)
from caseapi.ntus.models import NtuState as PublicNtuState
from nms.app.settings import DegradedSettings
from nms.clock import FakeClock
from nms.detector import store
from nms.detector.availability import Rules, Status
from nms.detector.engine import Detector
from nms.detector.store import StoredState, load_states
from nms.inventory.loader import parse_inventory
from nms.inventory.model import Inventory
from probes.observation import PingResult
from tests.caseapi.conftest import Database
from tests.nms.detector.helpers import Flaky, pings, store_inventory

RULES = Rules(down_after=timedelta(minutes=10), restore_after=2, stale_after=timedelta(minutes=2))
INTERVAL = timedelta(seconds=30)
FLEET = 500


def inventory(count: int = FLEET) -> Inventory:
    lines = ["customers:", "  - {id: acme, name: ACME}", "ntus:"]
    lines += [
        f'  - {{id: n{i:03d}, customer: acme, address: "{ipaddress.ip_address(0x0A000000 + i)}"}}'
        for i in range(count)
    ]
    return parse_inventory("\n".join(lines) + "\n", source="inv.yaml", fmt="yaml")


class FakeSink:
    """An in-memory case service that counts calls and fails on request.

    ``fail`` calls fail; ``commit_then_fail`` makes them fail after the cases were
    recorded (the answer lost on the way back), which a retry must not duplicate.
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.open: dict[str, str] = {}
        self.created: list[IncidentOpen] = []
        self.reports: list[list[NtuStatusUpdate]] = []
        self.fail = 0
        self.commit_then_fail = False

    def _failing(self, name: str) -> bool:
        self.calls[name] += 1
        if self.fail:
            self.fail -= 1
            if not self.commit_then_fail:
                raise ConnectionError("case service down")
            return True
        return False

    def _open(self, request: IncidentOpen) -> str:
        if request.dedup_key not in self.open:
            self.created.append(request)
            self.open[request.dedup_key] = f"PRO-{len(self.created):05d}"
        return self.open[request.dedup_key]

    async def open_incident(self, request: IncidentOpen) -> str:
        failing = self._failing("open_incident")
        ref = self._open(request)
        if failing:
            raise TimeoutError("answer lost")
        return ref

    async def open_incidents(self, requests: Sequence[IncidentOpen]) -> list[str]:
        failing = self._failing("open_incidents")
        refs = [self._open(r) for r in requests]
        if failing:
            raise TimeoutError("answer lost")
        return refs

    async def restore_incident(self, *, dedup_key: str, restored_at: datetime) -> str | None:
        self._failing("restore_incident")
        return self.open.pop(dedup_key, None)

    async def restore_incidents(self, requests: Sequence[IncidentRestore]) -> list[str | None]:
        failing = self._failing("restore_incidents")
        refs = [self.open.pop(r.dedup_key, None) for r in requests]
        if failing:
            raise TimeoutError("answer lost")
        return refs

    async def open_upstream_incident(self, request: UpstreamOpen) -> str:
        raise AssertionError("no nodes here")

    async def open_incident_refs(self) -> dict[str, str]:
        return dict(self.open)

    async def report_ntu_status(self, updates: Sequence[NtuStatusUpdate]) -> None:
        self.calls["report_ntu_status"] += 1
        self.reports.append(list(updates))


def ping(clock: FakeClock, ntu: str, ok: bool, rtt: float = 0.001) -> PingResult:
    return PingResult(
        key=ntu,
        address=ipaddress.ip_address("192.0.2.1"),
        started_at=clock.now(),
        sent=5,
        received=5 if ok else 0,
        rtts=(rtt,) * 5 if ok else (),
    )


class World:
    def __init__(self, db: Database, sink: object) -> None:
        self.db = db
        self.clock = FakeClock()
        self.sink = sink
        self.detector = self.new_detector()

    def new_detector(self) -> Detector:
        return Detector(
            rules=RULES,
            degraded=DegradedSettings(),
            clock=self.clock,
            sink=self.sink,  # type: ignore[arg-type]
            sessionmaker=self.db.sessionmaker,
        )

    async def cycle(self, down: bool, *, tick: bool = True) -> None:
        """One probe cycle of the whole fleet in one batch, every NTU up or all down."""
        await self.detector.observe(
            pings(ping(self.clock, n, not down) for n in self.detector.ntus)
        )
        self.clock.advance(INTERVAL)
        if tick:
            await self.detector.tick()

    async def saved(self) -> dict[str, StoredState]:
        return await load_states(self.db.sessionmaker)


async def _confirm(world: World) -> None:
    """Up once, then down until the batch at minute 10 confirms every NTU."""
    await world.cycle(down=False)
    for _ in range(20):
        await world.cycle(down=True)
    assert all(t.state.status == Status.SUSPECT for t in world.detector.ntus.values())


async def test_a_mass_outage_opens_every_p1_in_one_call(database: Database):
    sink = FakeSink()
    world = World(database, sink)
    await world.detector.load(inventory())
    await _confirm(world)
    assert sink.calls["open_incidents"] == 0
    await world.cycle(down=True, tick=False)  # minute 10: all 500 confirmed in this batch
    assert sink.calls["open_incidents"] == 1
    assert sink.calls["open_incident"] == 0
    assert len(sink.created) == FLEET
    refs = {n: t.case_ref or "" for n, t in world.detector.ntus.items()}
    assert sorted(refs.values()) == sorted(sink.open.values())  # 500 refs, request order kept
    assert all(sink.open[f"ntu:{n}:down"] == ref for n, ref in refs.items())
    assert world.detector.stats.cases_opened == FLEET
    saved = await world.saved()
    assert all(saved[n].case_ref == ref and not saved[n].case_pending for n, ref in refs.items())
    assert {s.state.status for s in saved.values()} == {Status.DOWN}
    for _ in range(5):  # still down: nothing more
        await world.cycle(down=True)
    assert sink.calls["open_incidents"] == 1
    assert len(sink.created) == FLEET


@pytest.mark.parametrize("commit_then_fail", [False, True], ids=["refused", "answer-lost"])
async def test_a_failed_batch_loses_nothing_and_is_retried_once(
    database: Database, commit_then_fail: bool
):
    sink = FakeSink()
    world = World(database, sink)
    await world.detector.load(inventory())
    await _confirm(world)
    sink.fail, sink.commit_then_fail = 1, commit_then_fail
    await world.cycle(down=True, tick=False)
    assert sink.calls["open_incidents"] == 1
    assert world.detector.stats.case_errors == 1
    ntus = world.detector.ntus.values()
    # The outage is real: every NTU is down, its case pending, and saved so.
    assert all(t.state.status == Status.DOWN and t.case_ref is None for t in ntus)
    assert all(t.pending_open is not None for t in ntus)
    saved = await world.saved()
    assert all(s.case_pending and s.case_ref is None for s in saved.values())
    await world.detector.tick()  # the retry: again one call for all of them
    assert sink.calls["open_incidents"] == 2
    assert len(sink.created) == FLEET  # exactly one case each
    assert len({r.dedup_key for r in sink.created}) == FLEET
    assert all(t.case_ref is not None and t.pending_open is None for t in ntus)
    saved = await world.saved()
    assert all(s.case_ref is not None and not s.case_pending for s in saved.values())
    await world.cycle(down=True)
    assert sink.calls["open_incidents"] == 2


@pytest.mark.parametrize("commit_then_fail", [False, True], ids=["refused", "answer-lost"])
async def test_a_failed_restore_batch_loses_nothing_and_is_retried_once(
    database: Database, commit_then_fail: bool
):
    sink = FakeSink()
    world = World(database, sink)
    await world.detector.load(inventory())
    await _confirm(world)
    await world.cycle(down=True)
    refs = {t.spec.id: t.case_ref for t in world.detector.ntus.values()}
    sink.fail, sink.commit_then_fail = 1, commit_then_fail
    while not sink.calls["restore_incidents"]:
        await world.cycle(down=False, tick=False)
    assert sink.calls["restore_incidents"] == 1
    ntus = world.detector.ntus.values()
    # Back up whatever the case service says; the case kept until it took the restore.
    assert all(t.state.status == Status.UP and t.pending_restore is not None for t in ntus)
    assert {t.spec.id: t.case_ref for t in ntus} == refs
    saved = await world.saved()
    assert {i: s.case_ref for i, s in saved.items()} == refs  # a restart restores them again
    await world.detector.tick()  # the retry: again one call for all of them
    assert sink.calls["restore_incidents"] == 2
    assert sink.open == {}
    assert all(t.case_ref is None and t.pending_restore is None for t in ntus)
    assert all(s.case_ref is None for s in (await world.saved()).values())
    await world.cycle(down=False)
    assert sink.calls["restore_incidents"] == 2
    assert sink.calls["restore_incident"] == 0


async def test_pending_opens_survive_a_restart_and_are_opened_in_one_call(database: Database):
    sink = FakeSink()
    world = World(database, sink)
    await world.detector.load(inventory())
    await _confirm(world)
    sink.fail = 1
    await world.cycle(down=True, tick=False)
    world.detector = world.new_detector()  # the process dies before any retry
    await world.detector.load(inventory())
    assert all(t.pending_open is not None for t in world.detector.ntus.values())
    await world.detector.tick()
    assert sink.calls["open_incidents"] == 2
    assert len(sink.created) == FLEET
    first = min(r.outage_start for r in sink.created)
    assert all(r.outage_start == first for r in sink.created)


async def test_a_mass_restoration_restores_every_case(database: Database):
    sink = FakeSink()
    world = World(database, sink)
    await world.detector.load(inventory(50))
    await _confirm(world)
    await world.cycle(down=True)
    assert len(sink.open) == 50
    await world.cycle(down=False)
    await world.cycle(down=False)
    assert sink.open == {}
    assert sink.calls["restore_incidents"] == 1  # the batch that saw them up: one call
    assert sink.calls["restore_incident"] == 0
    assert all(t.case_ref is None for t in world.detector.ntus.values())


async def test_one_report_per_batch_with_the_batchs_ntus(database: Database):
    sink = FakeSink()
    world = World(database, sink)
    await world.detector.load(inventory(20))
    await world.cycle(down=False, tick=False)
    (report,) = sink.reports
    assert {u.ntu_id for u in report} == set(world.detector.ntus)
    assert {u.status for u in report} == {"up"}
    assert all(u.rtt_avg == pytest.approx(0.001) and u.loss == 0 for u in report)
    await world.detector.tick()  # nothing changed: nothing to report
    assert len(sink.reports) == 1
    # Half the fleet in the next batch: only they are reported.
    half = sorted(world.detector.ntus)[:10]
    await world.detector.observe(pings(ping(world.clock, n, False) for n in half))
    assert {u.ntu_id for u in sink.reports[-1]} == set(half)
    assert {u.status for u in sink.reports[-1]} == {"suspect"}


async def test_rows_are_written_when_the_state_changes_and_figures_every_refresh(
    database: Database, monkeypatch: pytest.MonkeyPatch
):
    written: list[str] = []
    save = store.save_states

    async def counting(sessionmaker, states):
        states = list(states)
        written.extend(ntu_id for ntu_id, _ in states)
        await save(sessionmaker, states)

    monkeypatch.setattr("nms.detector.engine.save_states", counting)
    sink = FakeSink()
    world = World(database, sink)
    await world.detector.load(inventory(3))
    await world.detector.observe(pings(ping(world.clock, n, True) for n in world.detector.ntus))
    assert sorted(written) == sorted(world.detector.ntus)
    assert sorted(u.ntu_id for u in sink.reports[-1]) == sorted(world.detector.ntus)
    written.clear()
    # Up and staying up: the probe figures (observation time, RTT) alone are written
    # and reported once they are ``refresh`` (1 minute) newer than the saved ones.
    world.clock.advance(INTERVAL)
    await world.detector.observe(
        pings(ping(world.clock, n, True, rtt=0.009) for n in world.detector.ntus)
    )
    assert written == []
    assert sink.reports[-1] == []
    world.clock.advance(INTERVAL)
    await world.detector.observe(pings([ping(world.clock, "n000", True, rtt=0.007)]))
    assert written == ["n000"]
    (report,) = sink.reports[-1]
    assert report.ntu_id == "n000"
    assert report.rtt_avg == pytest.approx(0.007)
    written.clear()
    # A change of status is written at once, and so is every observation of an NTU
    # that is not up (its outage timer reads them after a restart).
    world.clock.advance(timedelta(seconds=1))
    await world.detector.observe(pings([ping(world.clock, "n001", False)]))
    world.clock.advance(timedelta(seconds=1))
    await world.detector.observe(pings([ping(world.clock, "n001", False)]))
    assert written == ["n001", "n001"]
    assert [u.status for u in sink.reports[-1]] == ["suspect"]
    written.clear()
    # A clean stop writes what was held back: n002's figures of the second cycle.
    await world.detector.flush()
    assert written == ["n002"]
    saved = await load_states(database.sessionmaker)
    now_seen = world.detector.ntus["n002"].state.last_observation_at
    assert saved["n002"].state.last_observation_at == now_seen
    assert sorted(u.ntu_id for u in sink.reports[-1]) == ["n002"]


async def test_a_mass_outage_through_the_real_case_service(database: Database):
    clock = FakeClock()
    flaky = Flaky(IncidentService(sessionmaker=database.sessionmaker, clock=clock))
    await store_inventory(database.sessionmaker, inventory())
    world = World(database, flaky)
    world.clock = clock
    world.detector = world.new_detector()
    await world.detector.load(inventory())
    await _confirm(world)
    flaky.down = True
    await world.cycle(down=True, tick=False)  # the batched open fails
    async with database.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 0
    flaky.down = False
    await world.detector.tick()
    assert flaky.batches == [FLEET, FLEET]  # the failed batch, then its retry
    async with database.sessionmaker() as session:
        cases = (await session.scalars(select(Case))).all()
        public = {row.ntu_id: row for row in (await session.scalars(select(PublicNtuState))).all()}
    assert len(cases) == FLEET
    assert len({c.dedup_key for c in cases}) == FLEET
    assert {c.priority for c in cases} == {"P1"}
    refs = {c.ntu_id or "": c.ref for c in cases}
    assert all(t.case_ref == refs[n] for n, t in world.detector.ntus.items())
    # The public status the API shows came through the case service.
    assert {row.status for row in public.values()} == {"down"}
    assert all(public[n].case_ref == ref for n, ref in refs.items())
