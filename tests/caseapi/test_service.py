"""CaseService: proactive incidents, restoration, recurrence, on both backends."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from caseapi.cases import repository
from caseapi.cases.config import DEFAULT_SLA
from caseapi.cases.enums import (
    WORKING_STATUSES,
    CaseEventKind,
    CasePriority,
    CaseSource,
    CaseStatus,
    CaseType,
)
from caseapi.cases.models import Case
from caseapi.cases.repository import CaseFilters
from caseapi.cases.service import CaseService
from caseapi.cases.store import mark_rfo_published
from caseapi.core.errors import CaseNotFoundError, InvalidCursorError
from caseapi.customers.models import Customer
from caseapi.incidents import IncidentService, IncidentSink, ntu_degraded_key
from caseapi.settings import CaseSettings, MonitoringWindowSettings
from nms.clock import FakeClock
from tests.caseapi.conftest import START, Database, incident

REF = re.compile(r"^CS-2026-\d{6}$")


async def _count_cases(database: Database) -> int:
    async with database.sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(Case))).scalar_one())


async def _close(database: Database, ref: str) -> None:
    # The lifecycle that closes cases comes in a later issue; set it directly.
    async with database.sessionmaker() as session:
        case = await repository.get_case_by_ref(session, ref=ref)
        assert case is not None
        await repository.set_case_status(session, case=case, status=CaseStatus.CLOSED, at=START)
        await session.commit()


def test_incident_service_is_an_incident_sink(incidents: IncidentService) -> None:
    sink: IncidentSink = incidents
    assert sink is incidents


def test_monitoring_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="monitoring_window_p2"):
        replace(DEFAULT_SLA, monitoring_window_p2=timedelta(0))
    with pytest.raises(ValueError, match="must be greater than zero"):
        CaseSettings(monitoring_window=MonitoringWindowSettings(p2=timedelta(0)))


async def test_open_creates_one_new_proactive_incident(
    service: CaseService, incidents: IncidentService
) -> None:
    request = incident("ntu-1")
    ref = await incidents.open_incident(request)

    assert REF.match(ref), ref
    assert ref == "CS-2026-000001"
    case = await service.get_case(ref)
    assert case.type is CaseType.INCIDENT
    assert case.priority is CasePriority.P1
    assert case.status is CaseStatus.NEW
    assert case.source is CaseSource.PROACTIVE
    assert case.dedup_key == "ntu:ntu-1:down"
    assert (case.ntu_id, case.customer_id, case.service_id) == ("ntu-1", "cust-1", "svc-ntu-1")
    assert case.outage_start == request.outage_start
    assert case.detected_at == request.detected_at
    assert case.created_at == case.updated_at == START
    assert case.outage_start is not None
    assert case.outage_start.tzinfo is not None
    assert (case.reopen_count, case.recurrence_of, case.no_support) == (0, None, False)
    assert case.restored_at is case.solved_at is case.monitoring_until is None

    timeline = await service.get_timeline(ref)
    assert [event.kind for event in timeline] == [CaseEventKind.OPENED]
    assert timeline[0].actor == "detector"
    assert timeline[0].at == START
    assert timeline[0].data["outage_start"] == request.outage_start.isoformat()


async def test_refs_count_up(incidents: IncidentService) -> None:
    refs = [await incidents.open_incident(incident(f"ntu-{n}")) for n in range(3)]
    assert refs == ["CS-2026-000001", "CS-2026-000002", "CS-2026-000003"]


async def test_open_twice_is_one_case(
    service: CaseService, incidents: IncidentService, database: Database
) -> None:
    first = await incidents.open_incident(incident("ntu-1"))
    second = await incidents.open_incident(incident("ntu-1"))
    assert first == second
    assert await _count_cases(database) == 1
    assert len(await service.get_timeline(first)) == 1


async def test_concurrent_opens_create_one_case(
    incidents: IncidentService, database: Database
) -> None:
    refs = await asyncio.gather(*(incidents.open_incident(incident("ntu-1")) for _ in range(10)))
    assert len(set(refs)) == 1
    assert await _count_cases(database) == 1


async def test_concurrent_opens_for_different_keys_get_distinct_refs(
    incidents: IncidentService, database: Database
) -> None:
    refs = await asyncio.gather(*(incidents.open_incident(incident(f"ntu-{n}")) for n in range(10)))
    assert sorted(refs) == [f"CS-2026-{n:06d}" for n in range(1, 11)]
    assert await _count_cases(database) == 10


@pytest.mark.parametrize(("priority", "window"), [("P1", 24), ("P2", 72)])
async def test_restore_solves_and_starts_the_monitoring_window(
    service: CaseService, incidents: IncidentService, clock: FakeClock, priority: str, window: int
) -> None:
    request = incident("ntu-1", priority="P1" if priority == "P1" else "P2")
    ref = await incidents.open_incident(request)
    clock.advance(timedelta(minutes=30))
    restored_at = START + timedelta(minutes=25)

    assert (
        await incidents.restore_incident(dedup_key=request.dedup_key, restored_at=restored_at)
        == ref
    )

    case = await service.get_case(ref)
    assert case.status is CaseStatus.SOLVED
    assert case.restored_at == restored_at
    assert case.solved_at == clock.now()
    assert case.monitoring_until == clock.now() + timedelta(hours=window)
    timeline = await service.get_timeline(ref)
    assert [event.kind for event in timeline] == [CaseEventKind.OPENED, CaseEventKind.RESTORED]
    assert timeline[1].data["from"] == "new"
    assert timeline[1].data["to"] == "solved"


async def test_restore_twice_is_harmless(
    service: CaseService, incidents: IncidentService, clock: FakeClock
) -> None:
    request = incident("ntu-1")
    ref = await incidents.open_incident(request)
    await incidents.restore_incident(dedup_key=request.dedup_key, restored_at=START)
    solved = await service.get_case(ref)
    clock.advance(timedelta(minutes=5))

    again = await incidents.restore_incident(
        dedup_key=request.dedup_key, restored_at=START + timedelta(minutes=5)
    )

    assert again == ref
    after = await service.get_case(ref)
    assert (after.solved_at, after.restored_at, after.monitoring_until) == (
        solved.solved_at,
        solved.restored_at,
        solved.monitoring_until,
    )
    assert len(await service.get_timeline(ref)) == 2


async def test_restore_without_open_case_returns_none(incidents: IncidentService) -> None:
    assert await incidents.restore_incident(dedup_key="ntu:nope:down", restored_at=START) is None


async def test_restore_before_outage_start_is_clamped(
    service: CaseService, incidents: IncidentService
) -> None:
    request = incident("ntu-1")
    ref = await incidents.open_incident(request)
    early = request.outage_start - timedelta(minutes=3)

    await incidents.restore_incident(dedup_key=request.dedup_key, restored_at=early)

    case = await service.get_case(ref)
    assert case.restored_at == request.outage_start
    event = (await service.get_timeline(ref))[-1]
    assert event.data["clamped_to_outage_start"] is True
    assert event.data["reported_restored_at"] == early.isoformat()


async def test_recurrence_inside_the_window_reopens_the_same_case(
    service: CaseService, incidents: IncidentService, clock: FakeClock
) -> None:
    request = incident("ntu-1")
    ref = await incidents.open_incident(request)
    clock.advance(timedelta(minutes=20))
    await incidents.restore_incident(dedup_key=request.dedup_key, restored_at=clock.now())
    clock.advance(timedelta(hours=3))
    again = incident(
        "ntu-1", outage_start=clock.now() - timedelta(minutes=10), detected_at=clock.now()
    )

    assert await incidents.open_incident(again) == ref

    case = await service.get_case(ref)
    assert case.status is CaseStatus.IN_PROGRESS
    assert case.reopen_count == 1
    assert case.solved_at is case.monitoring_until is case.restored_at is None
    assert case.updated_at == clock.now()
    kinds = [event.kind for event in await service.get_timeline(ref)]
    assert kinds == [CaseEventKind.OPENED, CaseEventKind.RESTORED, CaseEventKind.RECURRED]
    # Opening again while it is being worked changes nothing.
    assert await incidents.open_incident(again) == ref
    assert (await service.get_case(ref)).reopen_count == 1


async def test_late_duplicate_of_the_old_outage_does_not_reopen(
    service: CaseService, incidents: IncidentService, clock: FakeClock
) -> None:
    request = incident("ntu-1")
    ref = await incidents.open_incident(request)
    clock.advance(timedelta(minutes=20))
    await incidents.restore_incident(dedup_key=request.dedup_key, restored_at=clock.now())

    assert await incidents.open_incident(request) == ref

    case = await service.get_case(ref)
    assert (case.status, case.reopen_count) == (CaseStatus.SOLVED, 0)


async def test_outage_after_the_window_is_judged_as_if_the_ticker_had_run(
    service: CaseService, incidents: IncidentService, clock: FakeClock, database: Database
) -> None:
    # No ticker ran since the window ended: the outage must not vanish into the
    # solved case. RFO owed -> rfo_pending, where an outage puts it back to work.
    owed = incident("ntu-1")
    ref = await incidents.open_incident(owed)
    await incidents.restore_incident(dedup_key=owed.dedup_key, restored_at=clock.now())
    clock.advance(timedelta(hours=25))
    late = incident("ntu-1", outage_start=clock.now() - timedelta(minutes=10))

    assert await incidents.open_incident(late) == ref
    case = await service.get_case(ref)
    assert (case.status, case.reopen_count) == (CaseStatus.IN_PROGRESS, 1)
    kinds = [e.kind for e in await service.get_timeline(ref)]
    assert kinds[-2:] == [CaseEventKind.STATUS_CHANGED, CaseEventKind.RECURRED]

    # RFO published -> the window's end closes it, and the outage opens a linked case.
    paid = incident("ntu-2")
    old_ref = await incidents.open_incident(paid)
    await incidents.restore_incident(dedup_key=paid.dedup_key, restored_at=clock.now())
    async with database.sessionmaker() as session:
        old = await repository.get_case_by_ref(session, ref=old_ref)
        assert old is not None
        await mark_rfo_published(session, case_id=old.id, at=clock.now(), actor="e")
        await session.commit()
    clock.advance(timedelta(hours=25))
    new_ref = await incidents.open_incident(
        incident("ntu-2", outage_start=clock.now() - timedelta(minutes=10))
    )
    assert new_ref != old_ref
    closed = await service.get_case(old_ref)
    assert (closed.status, closed.closed_at) == (CaseStatus.CLOSED, clock.now())
    assert (await service.get_case(new_ref)).recurrence_of == closed.id


async def test_outage_inside_the_window_detected_after_it_is_a_recurrence(
    service: CaseService, incidents: IncidentService, clock: FakeClock
) -> None:
    request = incident("ntu-1")
    ref = await incidents.open_incident(request)
    await incidents.restore_incident(dedup_key=request.dedup_key, restored_at=clock.now())
    clock.advance(timedelta(hours=24, minutes=5))
    started_inside = incident("ntu-1", outage_start=clock.now() - timedelta(minutes=10))
    assert await incidents.open_incident(started_inside) == ref
    assert (await service.get_case(ref)).status is CaseStatus.IN_PROGRESS


async def test_after_closure_a_new_case_links_to_the_old(
    service: CaseService, incidents: IncidentService, clock: FakeClock, database: Database
) -> None:
    request = incident("ntu-1")
    old_ref = await incidents.open_incident(request)
    await incidents.restore_incident(dedup_key=request.dedup_key, restored_at=clock.now())
    await _close(database, old_ref)
    clock.advance(timedelta(days=3))

    new_ref = await incidents.open_incident(
        incident("ntu-1", outage_start=clock.now() - timedelta(minutes=10), detected_at=clock.now())
    )

    assert new_ref != old_ref
    new = await service.get_case(new_ref)
    old = await service.get_case(old_ref)
    assert new.status is CaseStatus.NEW
    assert new.recurrence_of == old.id
    assert new.previous_case is not None
    assert new.previous_case.ref == old_ref
    assert old.status is CaseStatus.CLOSED
    opened = (await service.get_timeline(new_ref))[0]
    assert opened.data["recurrence_of"] == old_ref


async def test_no_support_for_an_expired_customer(
    service: CaseService, incidents: IncidentService, database: Database
) -> None:
    async with database.sessionmaker() as session:
        session.add_all(
            [
                Customer(id="expired", name="Gone Ltd", contract_status="expired"),
                Customer(id="good", name="Good Ltd", contract_status="active"),
            ]
        )
        await session.commit()

    flagged = await service.get_case(
        await incidents.open_incident(incident("ntu-1", customer_id="expired"))
    )
    fine = await service.get_case(
        await incidents.open_incident(incident("ntu-2", customer_id="good"))
    )

    assert flagged.no_support is True
    assert fine.no_support is False


async def test_naive_timestamps_are_rejected(incidents: IncidentService) -> None:
    naive = START.replace(tzinfo=None)
    with pytest.raises(ValueError, match="outage_start"):
        await incidents.open_incident(incident("ntu-1", outage_start=naive))
    with pytest.raises(ValueError, match="restored_at"):
        await incidents.restore_incident(dedup_key="ntu:ntu-1:down", restored_at=naive)


async def test_get_unknown_case(service: CaseService) -> None:
    with pytest.raises(CaseNotFoundError):
        await service.get_case("CS-2026-999999")
    with pytest.raises(CaseNotFoundError):
        await service.get_timeline("CS-2026-999999")


async def test_list_filters_and_paginates(
    service: CaseService, incidents: IncidentService, clock: FakeClock
) -> None:
    for n in range(7):
        await incidents.open_incident(incident(f"ntu-{n}", priority="P1" if n % 2 == 0 else "P2"))
        clock.advance(timedelta(minutes=1))

    seen: list[str] = []
    cursor = None
    while True:
        page = await service.list_cases(filters=CaseFilters(), cursor=cursor, limit=3)
        assert page.count == 7
        seen += [case.ref for case in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [f"CS-2026-{n:06d}" for n in range(7, 0, -1)]

    p2 = await service.list_cases(filters=CaseFilters(priorities=[CasePriority.P2]))
    assert {case.ntu_id for case in p2.items} == {"ntu-1", "ntu-3", "ntu-5"}
    by_ntu = await service.list_cases(filters=CaseFilters(ntu_id="ntu-4"))
    assert [case.ntu_id for case in by_ntu.items] == ["ntu-4"]
    recent = await service.list_cases(
        filters=CaseFilters(updated_since=START + timedelta(minutes=5))
    )
    assert {case.ntu_id for case in recent.items} == {"ntu-5", "ntu-6"}
    solved = await service.list_cases(filters=CaseFilters(statuses=[CaseStatus.SOLVED]))
    assert (solved.items, solved.count, solved.next_cursor) == ([], 0, None)

    with pytest.raises(InvalidCursorError):
        await service.list_cases(filters=CaseFilters(), cursor="garbage")
    with pytest.raises(ValueError, match="limit"):
        await service.list_cases(filters=CaseFilters(), limit=501)


async def test_down_after_a_solved_degradation_outlived_its_p1_window_is_not_swallowed(
    service: CaseService, incidents: IncidentService, clock: FakeClock
) -> None:
    degraded = incident("ntu-1", priority="P2", dedup_key=ntu_degraded_key("ntu-1"))
    ref = await incidents.open_incident(degraded)
    await incidents.restore_incident(dedup_key=degraded.dedup_key, restored_at=clock.now())
    clock.advance(timedelta(hours=30))  # inside the P2 window, past a P1 one
    down = replace(
        incident("ntu-1", outage_start=clock.now() - timedelta(minutes=10)),
        supersedes=degraded.dedup_key,
    )
    new_ref = await incidents.open_incident(down)
    case = await service.get_case(new_ref)
    assert case.status in WORKING_STATUSES, (new_ref == ref, case.status)
    assert case.priority is CasePriority.P1
