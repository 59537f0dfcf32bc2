"""Fake-clock scenarios, one per SLA rule, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

from caseapi.cases.enums import (
    CaseEventKind,
    CasePriority,
    CaseStatus,
    CaseSubject,
    CaseType,
    CommitmentKind,
    EscalationLevel,
    NotificationKind,
    RootCauseCategory,
)
from caseapi.cases.schemas import CaseCreate
from caseapi.cases.service import CaseService
from caseapi.cases.snapshot import Assign, Commitment, SetCommitment, Transition
from caseapi.cases.store import on_customer_reply
from caseapi.incidents import IncidentService, ntu_degraded_key
from nms.clock import FakeClock
from tests.caseapi.conftest import Database, incident
from tests.caseapi.lifecycle_fixtures import (
    CUSTOMER,
    ENGINEER,
    advance,
    events_of,
    kinds,
    notifications,
    open_cases_per_key,
    publish_rfo,
    seed,
    set_ntu_status,
    ticker,
)

M = timedelta(minutes=1)
H = timedelta(hours=1)
D = timedelta(days=1)


async def test_first_response_breach_at_30_minutes(
    database: Database, service: CaseService, incidents: IncidentService, clock: FakeClock
) -> None:
    ref = await incidents.open_incident(incident("ntu-1"))
    tick = ticker(database, clock, service)
    assert await advance(clock, tick, 29 * M) == 0
    assert (await service.get_case(ref)).escalation_level is EscalationLevel.L1
    assert await advance(clock, tick, M) == 1
    case = await service.get_case(ref)
    assert case.first_response_breached_at == clock.now()
    assert case.escalation_level is EscalationLevel.L2
    assert await events_of(service, ref, CaseEventKind.SLA_BREACHED) == [
        {"clock": "first_response", "due_at": (clock.now()).isoformat()}
    ]
    # Handled once: running again changes nothing.
    assert await tick.run_once() == 0


async def test_unassigned_flag_at_one_hour(
    database: Database, service: CaseService, incidents: IncidentService, clock: FakeClock
) -> None:
    flagged = await incidents.open_incident(incident("ntu-1"))
    taken = await incidents.open_incident(incident("ntu-2"))
    await service.act(ENGINEER, taken, lambda _: Assign(assignee="alice", actor=ENGINEER.actor))
    tick = ticker(database, clock, service)
    await advance(clock, tick, 59 * M)
    assert (await service.get_case(flagged)).unassigned_flagged_at is None
    await advance(clock, tick, M)
    assert (await service.get_case(flagged)).unassigned_flagged_at == clock.now()
    assert (await service.get_case(taken)).unassigned_flagged_at is None


async def test_escalation_l1_l2_l3(
    database: Database, service: CaseService, incidents: IncidentService, clock: FakeClock
) -> None:
    ref = await incidents.open_incident(incident("ntu-1"))
    tick = ticker(database, clock, service)
    await advance(clock, tick, 30 * M)  # first response missed: L2
    promise = Commitment(kind=CommitmentKind.NEXT_UPDATE, due_at=clock.now() + 30 * M)
    await service.act(ENGINEER, ref, lambda _: SetCommitment(commitment=promise, actor="e"))
    await advance(clock, tick, 30 * M)  # the promised update missed: L3
    case = await service.get_case(ref)
    assert case.escalation_level is EscalationLevel.L3
    levels = [(e["from"], e["to"]) for e in await events_of(service, ref, CaseEventKind.ESCALATED)]
    assert levels == [("L1", "L2"), ("L2", "L3")]
    assert len(await events_of(service, ref, CaseEventKind.COMMITMENT_MISSED)) == 1


async def _promise(service: CaseService, ref: str, due_at: datetime) -> None:
    event = SetCommitment(
        commitment=Commitment(kind=CommitmentKind.NEXT_UPDATE, due_at=due_at), actor="e"
    )
    await service.act(ENGINEER, ref, lambda _: event)


async def test_deadlines_missed_in_one_tick_escalate_one_step(
    database: Database, service: CaseService, incidents: IncidentService, clock: FakeClock
) -> None:
    ref = await incidents.open_incident(incident("ntu-1"))
    tick = ticker(database, clock, service)
    promise = Commitment(kind=CommitmentKind.NEXT_UPDATE, due_at=clock.now() + 20 * M)
    # A commitment is not a response: miss the promise, the first response and the
    # repair time together (the ticker was down for 5 h).
    await service.act(ENGINEER, ref, lambda _: SetCommitment(commitment=promise, actor="e"))
    await advance(clock, tick, 5 * H)
    case = await service.get_case(ref)
    assert case.escalation_level is EscalationLevel.L2
    assert case.ttr_breached_at == clock.now()
    escalations = await events_of(service, ref, CaseEventKind.ESCALATED)
    assert [(e["from"], e["to"]) for e in escalations] == [("L1", "L2")]
    assert escalations[0]["missed"] == [
        "commitment missed: next_update",
        "first response overdue",
        "time to repair exceeded",
    ]
    # Two more misses in two later ticks: L3, then nothing above it.
    for _ in range(2):
        await _promise(service, ref, clock.now() + 10 * M)
        await advance(clock, tick, 10 * M)
    assert (await service.get_case(ref)).escalation_level is EscalationLevel.L3
    escalations = await events_of(service, ref, CaseEventKind.ESCALATED)
    assert [(e["from"], e["to"]) for e in escalations] == [("L1", "L2"), ("L2", "L3")]
    assert len(await events_of(service, ref, CaseEventKind.COMMITMENT_MISSED)) == 3


async def test_p1_closes_24h_after_solved_once_the_rfo_is_published(
    database: Database, service: CaseService, incidents: IncidentService, clock: FakeClock
) -> None:
    request = incident("ntu-1")
    ref = await incidents.open_incident(request)
    tick = ticker(database, clock, service)
    clock.advance(20 * M)
    await incidents.restore_incident(dedup_key=request.dedup_key, restored_at=clock.now())
    solved_at = clock.now()
    await advance(clock, tick, 24 * H - M)
    assert (await service.get_case(ref)).status is CaseStatus.SOLVED
    await advance(clock, tick, M)
    assert (await service.get_case(ref)).status is CaseStatus.RFO_PENDING
    clock.advance(2 * H)
    await publish_rfo(database, ref, clock.now())
    case = await service.get_case(ref)
    assert case.status is CaseStatus.CLOSED
    assert case.closed_at is not None
    assert case.closed_at - solved_at >= 24 * H


async def test_p2_with_rfo_already_published_closes_at_72h(
    database: Database, service: CaseService, incidents: IncidentService, clock: FakeClock
) -> None:
    request = incident("ntu-1", priority="P2")
    ref = await incidents.open_incident(request)
    tick = ticker(database, clock, service)
    await incidents.restore_incident(dedup_key=request.dedup_key, restored_at=clock.now())
    solved_at = clock.now()
    await publish_rfo(database, ref, clock.now() + H)
    assert (await service.get_case(ref)).status is CaseStatus.SOLVED  # window still runs
    await advance(clock, tick, 72 * H - M)
    assert (await service.get_case(ref)).status is CaseStatus.SOLVED
    await advance(clock, tick, M)
    case = await service.get_case(ref)
    assert case.status is CaseStatus.CLOSED
    assert case.closed_at == solved_at + 72 * H


async def test_recurrence_at_hour_23_reopens(
    database: Database, service: CaseService, incidents: IncidentService, clock: FakeClock
) -> None:
    request = incident("ntu-1")
    ref = await incidents.open_incident(request)
    tick = ticker(database, clock, service)
    await incidents.restore_incident(dedup_key=request.dedup_key, restored_at=clock.now())
    await advance(clock, tick, 23 * H)
    again = incident("ntu-1", outage_start=clock.now() - 10 * M, detected_at=clock.now())
    assert await incidents.open_incident(again) == ref
    case = await service.get_case(ref)
    assert (case.status, case.reopen_count) == (CaseStatus.IN_PROGRESS, 1)
    await advance(clock, tick, 2 * H)  # the old window end does nothing now
    assert (await service.get_case(ref)).status is CaseStatus.IN_PROGRESS


async def test_recurrence_after_closure_opens_a_linked_case(
    database: Database, service: CaseService, incidents: IncidentService, clock: FakeClock
) -> None:
    request = incident("ntu-1")
    old = await incidents.open_incident(request)
    tick = ticker(database, clock, service)
    await incidents.restore_incident(dedup_key=request.dedup_key, restored_at=clock.now())
    await publish_rfo(database, old, clock.now())
    await advance(clock, tick, 24 * H)
    assert (await service.get_case(old)).status is CaseStatus.CLOSED
    clock.advance(H)
    new = await incidents.open_incident(
        incident("ntu-1", outage_start=clock.now() - 10 * M, detected_at=clock.now())
    )
    assert new != old
    case = await service.get_case(new)
    assert case.previous_case is not None
    assert case.previous_case.ref == old
    assert await open_cases_per_key(database) == {request.dedup_key: 1}


async def _waiting_request(service: CaseService, ntu_id: str | None = None) -> str:
    draft = CaseCreate(
        type=CaseType.GENERAL_REQUEST if ntu_id is None else CaseType.INCIDENT,
        subject=CaseSubject.INFORMATION_REQUEST if ntu_id is None else None,
        summary="question",
        customer_id="cust-1",
        ntu_id=ntu_id,
    )
    ref = (await service.create_case(ENGINEER, draft)).case.ref
    await service.act(
        ENGINEER, ref, lambda _: Transition(to=CaseStatus.WAITING_CUSTOMER, actor="e")
    )
    return ref


async def test_reminder_at_2_days_and_auto_close_at_4_days(
    database: Database, service: CaseService, clock: FakeClock
) -> None:
    await seed(database)
    ref = await _waiting_request(service)
    tick = ticker(database, clock, service)
    await advance(clock, tick, 2 * D - M)
    assert await events_of(service, ref, CaseEventKind.REMINDER_SENT) == []
    await advance(clock, tick, M)
    assert len(await events_of(service, ref, CaseEventKind.REMINDER_SENT)) == 1
    assert [n.kind for n in await notifications(database)] == [
        NotificationKind.WAITING_CUSTOMER_REMINDER
    ]
    await advance(clock, tick, 2 * D - M)
    assert (await service.get_case(ref)).status is CaseStatus.WAITING_CUSTOMER
    await advance(clock, tick, M)
    case = await service.get_case(ref)
    assert case.status is CaseStatus.CLOSED
    assert (await events_of(service, ref, CaseEventKind.CLOSED))[0]["reason"] == (
        "no reply from the customer"
    )


async def test_contract_sets_a_25_day_auto_close(
    database: Database, service: CaseService, clock: FakeClock
) -> None:
    await seed(database, waiting_customer_close_after="25d")
    ref = await _waiting_request(service)
    tick = ticker(database, clock, service)
    await advance(clock, tick, 24 * D)
    assert (await service.get_case(ref)).status is CaseStatus.WAITING_CUSTOMER
    await advance(clock, tick, D)
    assert (await service.get_case(ref)).status is CaseStatus.CLOSED


async def test_no_auto_close_while_the_ntu_is_down(
    database: Database, service: CaseService, clock: FakeClock
) -> None:
    await seed(database, ntu_status="down")
    ref = await _waiting_request(service, ntu_id="ntu-1")
    tick = ticker(database, clock, service)
    await advance(clock, tick, 4 * D)
    await advance(clock, tick, 3 * H)
    case = await service.get_case(ref)
    assert case.status is CaseStatus.WAITING_CUSTOMER
    assert len(await events_of(service, ref, CaseEventKind.AUTO_CLOSE_HELD)) == 1
    await set_ntu_status(database, "ntu-1", "up")
    await advance(clock, tick, H)
    # An incident still owes its RFO: it waits for it instead of closing.
    assert (await service.get_case(ref)).status is CaseStatus.RFO_PENDING


async def test_customer_reply_resumes_and_moves_the_repair_deadline(
    database: Database, service: CaseService, clock: FakeClock
) -> None:
    await seed(database)
    ref = await _waiting_request(service, ntu_id="ntu-2")
    before = await service.get_case(ref)
    clock.advance(5 * H)
    async with database.sessionmaker() as session:
        await on_customer_reply(session, case_id=before.id, at=clock.now(), actor=CUSTOMER.actor)
        await session.commit()
    case = await service.get_case(ref)
    assert case.status is CaseStatus.IN_PROGRESS
    assert before.ttr_due_at is not None
    assert case.ttr_due_at == before.ttr_due_at + 5 * H


async def test_engineer_resolution_starts_the_window(
    database: Database, service: CaseService, incidents: IncidentService, clock: FakeClock
) -> None:
    ref = await incidents.open_incident(incident("ntu-1", priority="P2"))
    event = Transition(
        to=CaseStatus.SOLVED,
        actor="e",
        resolution_method="replaced NTU",
        root_cause_category=RootCauseCategory.HARDWARE,
    )
    await service.act(ENGINEER, ref, lambda _: event)
    case = await service.get_case(ref)
    assert case.monitoring_until == clock.now() + 72 * H
    assert case.root_cause_category is RootCauseCategory.HARDWARE


async def test_down_supersedes_degraded_in_place(
    service: CaseService, incidents: IncidentService, clock: FakeClock
) -> None:
    degraded = incident("ntu-1", priority="P2", dedup_key=ntu_degraded_key("ntu-1"))
    ref = await incidents.open_incident(degraded)
    clock.advance(10 * M)
    down = incident("ntu-1", priority="P1", detected_at=clock.now())
    from dataclasses import replace

    assert await incidents.open_incident(replace(down, supersedes=degraded.dedup_key)) == ref
    case = await service.get_case(ref)
    assert (case.priority, case.dedup_key) == (CasePriority.P1, "ntu:ntu-1:down")
    assert case.ttr_due_at == case.created_at + 4 * H
    changes = await events_of(service, ref, CaseEventKind.PRIORITY_CHANGED)
    assert changes[0]["from"] == "P2"
    assert changes[0]["to"] == "P1"
    assert changes[0]["reason"] == "NTU went down"
    # The next open for the P1 key finds the same case.
    assert await incidents.open_incident(down) == ref
    assert await kinds(service, ref) == [
        CaseEventKind.OPENED,
        CaseEventKind.PRIORITY_CHANGED,
        CaseEventKind.PRIORITY_CHANGED,
    ]
