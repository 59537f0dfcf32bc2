"""The detector's contract beyond one incident: batches, adoption, the NTU status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.auth.principal import Role
from caseapi.cases.enums import CaseStatus
from caseapi.cases.models import Case
from caseapi.cases.service import CaseService
from caseapi.customers.models import Customer
from caseapi.incidents import (
    IncidentOpen,
    IncidentService,
    NtuStatusUpdate,
    node_down_key,
    ntu_degraded_key,
    ntu_down_key,
)
from caseapi.ntus.models import Ntu, NtuState
from caseapi.reports.availability import OutageCause
from caseapi.reports.models import OutageInterval
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import client_for, make_app, mint_key
from tests.caseapi.conftest import START, Database, incident


async def _count(database: Database) -> int:
    async with database.sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(Case))).scalar_one())


def test_dedup_keys() -> None:
    assert ntu_down_key("a") == "ntu:a:down"
    assert ntu_degraded_key("a") == "ntu:a:degraded"
    assert node_down_key("pop-1") == "node:pop-1:down"


async def test_a_batch_opens_every_case_and_keeps_the_request_order(
    database: Database, incidents: IncidentService
) -> None:
    existing = await incidents.open_incident(incident("ntu-2"))
    requests = [incident(f"ntu-{n}") for n in (3, 1, 2)] + [incident("ntu-3")]
    refs = await incidents.open_incidents(requests)
    assert len(refs) == 4
    assert refs[2] == existing  # already open: the same case, as for one call
    assert refs[3] == refs[0]  # the same key twice in one batch: one case
    assert len(set(refs)) == 3
    assert await _count(database) == 3
    assert await incidents.open_incidents(requests) == refs  # idempotent
    assert await incidents.open_incidents([]) == []


async def test_a_batch_follows_the_rules_of_one_call(
    incidents: IncidentService, service: CaseService, clock: FakeClock
) -> None:
    ref = await incidents.open_incident(incident("ntu-1"))
    await incidents.restore_incident(dedup_key=ntu_down_key("ntu-1"), restored_at=START)
    clock.advance(timedelta(hours=1))
    again = incident("ntu-1", outage_start=clock.now(), detected_at=clock.now())
    (recurred,) = await incidents.open_incidents([again])
    assert recurred == ref
    assert (await service.get_case(ref)).status is CaseStatus.IN_PROGRESS


async def test_a_naive_timestamp_in_a_batch_writes_nothing(
    database: Database, incidents: IncidentService
) -> None:
    naive = incident("ntu-2", detected_at=START.replace(tzinfo=None))
    with pytest.raises(ValueError, match="detected_at"):
        await incidents.open_incidents([incident("ntu-1"), naive])
    assert await _count(database) == 0


class _LosesTheRace(IncidentService):
    """A batch whose transaction hits a unique key at its end, as a lost race does,
    ``losses`` times in a row."""

    def __init__(self, *, losses: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.losses = losses
        self.batches = 0

    async def _open_many(
        self, session: AsyncSession, requests: Sequence[IncidentOpen]
    ) -> list[str]:
        refs = await super()._open_many(session, requests)
        self.batches += 1
        if self.batches <= self.losses:
            raise IntegrityError("INSERT", {}, Exception("duplicate key"))
        return refs


async def test_a_lost_race_runs_the_batch_again(database: Database, clock: FakeClock) -> None:
    service = _LosesTheRace(losses=1, sessionmaker=database.sessionmaker, clock=clock)
    refs = await service.open_incidents([incident(f"ntu-{n}") for n in (1, 2, 3)])
    assert (service.batches, len(set(refs)), await _count(database)) == (2, 3, 3)


async def test_a_lost_race_falls_back_to_one_transaction_per_request(
    database: Database, clock: FakeClock
) -> None:
    service = _LosesTheRace(losses=99, sessionmaker=database.sessionmaker, clock=clock)
    requests: Sequence[IncidentOpen] = [incident(f"ntu-{n}") for n in (1, 2)] + [
        incident("ntu-last")
    ]
    refs = await service.open_incidents(requests)
    assert len(set(refs)) == 3
    assert await _count(database) == 3  # the rolled-back batch left nothing behind
    assert await service.open_incidents(requests) == refs


async def test_open_incident_refs_lists_the_ntu_incidents_being_worked(
    incidents: IncidentService,
) -> None:
    down = await incidents.open_incident(incident("ntu-1"))
    degraded = await incidents.open_incident(
        incident("ntu-2", priority="P2", dedup_key=ntu_degraded_key("ntu-2"))
    )
    await incidents.open_incident(incident("ntu-3"))
    await incidents.restore_incident(dedup_key=ntu_down_key("ntu-3"), restored_at=START)
    await incidents.open_incident(incident("pop-1", dedup_key=node_down_key("pop-1")))
    assert await incidents.open_incident_refs() == {
        ntu_down_key("ntu-1"): down,
        ntu_degraded_key("ntu-2"): degraded,
    }


def _status(ntu_id: str = "ntu-1", **changes: object) -> NtuStatusUpdate:
    base = NtuStatusUpdate(
        ntu_id=ntu_id,
        status="up",
        since=START - timedelta(hours=1),
        last_observation_at=START,
        last_success_at=START,
        rtt_avg=0.012,
        loss=0.0,
        jitter=0.001,
        wan_if_index=3,
        wan_oper_status=1,
        in_bps=1000.0,
        reboots=1,
        last_reboot_at=START - timedelta(days=1),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def _state(database: Database, ntu_id: str) -> NtuState:
    async with database.sessionmaker() as session:
        state = await session.get(NtuState, ntu_id)
        assert state is not None
        return state


async def test_report_ntu_status_upserts_the_public_status(
    database: Database, incidents: IncidentService
) -> None:
    await incidents.report_ntu_status([_status("ntu-1"), _status("ntu-2", status="down")])
    first = await _state(database, "ntu-1")
    assert (first.status, first.rtt_avg, first.loss, first.wan_if_index) == ("up", 0.012, 0.0, 3)
    assert first.last_reboot_at == START - timedelta(days=1)
    assert first.good_streak == 0  # a legacy column: never written by caseapi, but NOT NULL

    later = START + timedelta(minutes=1)
    await incidents.report_ntu_status(
        [
            _status("ntu-1", status="down", since=later, outage_start=later, case_ref="CS-1"),
            _status("ntu-1", status="suspect", since=later),  # the last one per NTU wins
        ]
    )
    first = await _state(database, "ntu-1")
    assert (first.status, first.since, first.outage_start, first.case_ref) == (
        "suspect",
        later,
        None,
        None,
    )
    assert (await _state(database, "ntu-2")).status == "down"


async def test_an_update_without_a_burst_keeps_the_probe_figures(
    database: Database, incidents: IncidentService
) -> None:
    await incidents.report_ntu_status([_status()])
    await incidents.report_ntu_status(
        [_status(status="down", rtt_avg=None, loss=None, jitter=None, wan_oper_status=2)]
    )
    state = await _state(database, "ntu-1")
    assert (state.status, state.wan_oper_status) == ("down", 2)
    assert (state.rtt_avg, state.loss, state.jitter) == (0.012, 0.0, 0.001)
    # A burst that got no answer at all is a burst: its figures replace the old ones.
    await incidents.report_ntu_status([_status(rtt_avg=None, loss=1.0, jitter=None)])
    state = await _state(database, "ntu-1")
    assert (state.rtt_avg, state.loss, state.jitter) == (None, 1.0, None)


async def test_a_status_with_a_naive_timestamp_is_refused(incidents: IncidentService) -> None:
    with pytest.raises(ValueError, match="last_success_at"):
        _status("ntu-2", last_success_at=START.replace(tzinfo=None))
    await incidents.report_ntu_status([])  # nothing to do


async def test_the_api_shows_what_the_detector_reported(
    database: Database, service: CaseService, incidents: IncidentService, clock: FakeClock
) -> None:
    async with database.sessionmaker() as session:
        session.add(Customer(id="cust-1", name="Acme"))
        await session.flush()
        session.add(Ntu(id="ntu-1", customer_id="cust-1", address="10.0.0.1"))
        await session.commit()
    ref = await incidents.open_incident(incident("ntu-1"))
    await incidents.report_ntu_status(
        [_status(status="down", outage_start=START - timedelta(minutes=10), case_ref=ref)]
    )
    app = make_app(database, service, clock)
    key = await mint_key(app, role=Role.NOC)
    async with client_for(app, key) as client:
        listed: httpx.Response = await client.get("/v1/ntus")
        status = (await client.get("/v1/ntus/ntu-1/status")).json()
    assert listed.json()["data"][0]["status"] == "down"
    assert status["status"] == "down"
    assert status["case_ref"] == ref
    assert (status["rtt_avg"], status["loss"]) == (0.012, 0.0)


async def test_a_status_report_reads_only_its_own_ntus_no_data_gaps(
    database: Database, incidents: IncidentService
) -> None:
    """A whole fleet without data has a gap each: a report about one NTU must not load
    them all (at 100,000 NTUs that load starved the probes)."""
    async with database.sessionmaker() as session:
        session.add(Customer(id="cust-1", name="Acme"))
        await session.flush()
        session.add_all(
            Ntu(id=n, customer_id="cust-1", address=f"10.0.0.{i}")
            for i, n in enumerate(("ntu-1", "ntu-2", "ntu-9"), start=1)
        )
        await session.commit()
    await incidents.report_ntu_status(
        [_status(n, status="unknown", since=START) for n in ("ntu-1", "ntu-2", "ntu-9")]
    )
    loaded: list[str] = []

    def on_load(target: OutageInterval, _context: object) -> None:
        loaded.append(target.ntu_id)

    event.listen(OutageInterval, "load", on_load)
    try:
        back = START + timedelta(minutes=5)
        await incidents.report_ntu_status([_status("ntu-1", since=back, last_observation_at=back)])
    finally:
        event.remove(OutageInterval, "load", on_load)
    assert loaded == ["ntu-1"]
    async with database.sessionmaker() as session:
        gaps = (
            await session.scalars(
                select(OutageInterval).where(OutageInterval.cause == OutageCause.NO_DATA.value)
            )
        ).all()
    ends = {gap.ntu_id: gap.end_at for gap in gaps}
    assert ends == {"ntu-1": back, "ntu-2": None, "ntu-9": None}
