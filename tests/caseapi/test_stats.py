"""Case statistics for the NOC: aggregate figures and the incremental readings."""

from __future__ import annotations

from datetime import timedelta

from caseapi.cases.models import CaseNotification
from caseapi.cases.ticker import CaseTicker
from caseapi.incidents import IncidentService, ntu_degraded_key, ntu_down_key
from caseapi.stats import (
    Detection,
    Escalations,
    PriorityFigures,
    case_snapshot,
    detections_since,
    escalations_since,
)
from nms.clock import FakeClock
from tests.caseapi.conftest import START, Database, incident

AT_RISK = timedelta(minutes=15)
WINDOW = timedelta(days=30)


async def test_figures_follow_the_cases(
    database: Database, incidents: IncidentService, clock: FakeClock
) -> None:
    empty = await case_snapshot(
        database.sessionmaker, now=clock.now(), at_risk_within=AT_RISK, compliance_window=WINDOW
    )
    assert empty.open_by == {} and empty.escalation == {}
    assert set(empty.priorities) == {"P1", "P2", "P3"}
    assert empty.priorities["P1"] == PriorityFigures()
    assert (empty.notifications_pending, empty.oldest_notification_at) == (0, None)

    await incidents.open_incident(incident("ntu-1"))  # outage 10 min before START
    p2_start = START - timedelta(minutes=5)
    await incidents.open_incident(
        incident("ntu-2", priority="P2", dedup_key=ntu_degraded_key("ntu-2"), outage_start=p2_start)
    )
    async with database.sessionmaker() as session:
        session.add(CaseNotification(case_id=1, kind="case_auto_closed", created_at=p2_start))
        await session.commit()

    snap = await case_snapshot(
        database.sessionmaker, now=clock.now(), at_risk_within=AT_RISK, compliance_window=WINDOW
    )
    assert snap.taken_at == START
    assert snap.open_by == {("P1", "new"): 1, ("P2", "new"): 1}
    assert snap.escalation == {("P1", "L1"): 1, ("P2", "L1"): 1}
    p1 = snap.priorities["P1"]
    assert (p1.unassigned, p1.at_risk_first_response, p1.oldest_working_at) == (1, 0, START)
    assert (snap.notifications_pending, snap.oldest_notification_at) == (1, p2_start)
    assert snap.ntu_case_since == {("ntu-1", "P1"): START, ("ntu-2", "P2"): START}

    # 20 minutes on, the first response (due at 30) is at risk; at 35 it is breached.
    clock.advance(timedelta(minutes=20))
    snap = await case_snapshot(
        database.sessionmaker, now=clock.now(), at_risk_within=AT_RISK, compliance_window=WINDOW
    )
    assert snap.priorities["P1"].at_risk_first_response == 1
    clock.advance(timedelta(minutes=15))
    await CaseTicker(sessionmaker=database.sessionmaker, clock=clock).run_once()
    snap = await case_snapshot(
        database.sessionmaker, now=clock.now(), at_risk_within=AT_RISK, compliance_window=WINDOW
    )
    p1 = snap.priorities["P1"]
    assert (p1.breached_first_response, p1.at_risk_first_response) == (1, 0)
    assert p1.first_response_missed == 1
    assert snap.escalation[("P1", "L2")] == 1

    await incidents.restore_incident(dedup_key=ntu_down_key("ntu-1"), restored_at=clock.now())
    snap = await case_snapshot(
        database.sessionmaker, now=clock.now(), at_risk_within=AT_RISK, compliance_window=WINDOW
    )
    assert snap.priorities["P1"].monitoring == 1
    assert snap.open_by[("P1", "solved")] == 1
    assert ("ntu-1", "P1") in snap.ntu_case_since  # solved is still open


async def test_detections_and_escalations_are_read_after_an_id(
    database: Database, incidents: IncidentService, clock: FakeClock
) -> None:
    for n in range(3):
        await incidents.open_incident(incident(f"ntu-{n}"))
    first = await detections_since(database.sessionmaker, after_case_id=0, limit=2)
    assert first == [
        Detection(case_id=1, priority="P1", latency=600.0),
        Detection(case_id=2, priority="P1", latency=600.0),
    ]
    rest = await detections_since(database.sessionmaker, after_case_id=first[-1].case_id)
    assert [d.case_id for d in rest] == [3]

    assert await escalations_since(database.sessionmaker, after_event_id=0) == Escalations(
        count=0, last_event_id=None
    )
    clock.advance(timedelta(minutes=31))
    await CaseTicker(sessionmaker=database.sessionmaker, clock=clock).run_once()
    seen = await escalations_since(database.sessionmaker, after_event_id=0)
    assert seen.count == 3 and seen.last_event_id is not None
    again = await escalations_since(database.sessionmaker, after_event_id=seen.last_event_id)
    assert again == Escalations(count=0, last_event_id=None)
