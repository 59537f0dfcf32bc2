"""First response and the unassigned flag are two clocks (DOMAIN.md, "Commitments").

Through the API with the fake clock and the case ticker: taking a case stops the
"unassigned for 1 h" flag but says nothing to the customer, so the first-response
clock keeps running; a case handed back to a queue (assignee cleared, or handed off
to a level with nobody named) is flagged again 1 h later, once.

That a public staff comment is the first response and an internal note is not is
tested in ``test_comments.py`` (``test_staff_public_comment_is_the_first_response``,
``test_staff_public_reply_stops_the_first_response_breach``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

import httpx
import pytest

from caseapi.cases.enums import CaseEventKind, EscalationLevel
from caseapi.cases.service import CaseService
from caseapi.cases.ticker import CaseTicker
from caseapi.incidents import IncidentService
from nms.clock import FakeClock
from tests.caseapi.conftest import START, Database, incident
from tests.caseapi.lifecycle_fixtures import advance, events_of, kinds, ticker

M: Final = timedelta(minutes=1)
H: Final = timedelta(hours=1)
HANDOFF: Final = {"to_level": "L2", "summary": "fibre?", "details": "loss since 09:00"}
#: Two ways back to the queue: the assignee cleared, or a hand-off naming nobody.
HAND_BACKS: Final[dict[str, tuple[str, dict[str, Any]]]] = {
    "assign_null": ("assign", {"assignee": None}),
    "handoff_to_level": ("handoff", HANDOFF),
}


@pytest.fixture
def tick(database: Database, clock: FakeClock, service: CaseService) -> CaseTicker:
    return ticker(database, clock, service)


@pytest.fixture
async def ref(incidents: IncidentService) -> str:
    """A proactive P1 opened at ``START``: first response due +30 min, flag at +1 h."""
    return await incidents.open_incident(incident("ntu-1"))


async def _post(client: httpx.AsyncClient, url: str, body: dict[str, Any] | None = None) -> None:
    response = await client.post(url, json=body)
    assert response.status_code in (200, 201), response.text


async def _flags(service: CaseService, ref: str) -> list[dict[str, Any]]:
    return await events_of(service, ref, CaseEventKind.UNASSIGNED_FLAGGED)


async def test_taking_stops_the_unassigned_flag_not_the_first_response_clock(
    staff: httpx.AsyncClient,
    service: CaseService,
    clock: FakeClock,
    tick: CaseTicker,
    ref: str,
) -> None:
    due = START + 30 * M
    assert (await service.get_case(ref)).first_response_due_at == due
    clock.advance(5 * M)
    await _post(staff, f"/v1/cases/{ref}/take")
    taken = await service.get_case(ref)
    assert taken.assignee == "test-engineer-staff"
    # Taking is not a word to the customer: the first-response clock still runs.
    assert (taken.first_responded_at, taken.first_response_due_at) == (None, due)
    assert CaseEventKind.FIRST_RESPONSE not in await kinds(service, ref)
    # ... and still breaches at its due time when nobody writes to the customer.
    await advance(clock, tick, due - M - clock.now())
    assert (await service.get_case(ref)).first_response_breached_at is None
    await advance(clock, tick, M)
    breached = await service.get_case(ref)
    assert (breached.first_response_breached_at, breached.first_responded_at) == (due, None)
    assert breached.escalation_level is EscalationLevel.L2
    assert await events_of(service, ref, CaseEventKind.SLA_BREACHED) == [
        {"clock": "first_response", "due_at": due.isoformat()}
    ]
    # Well past the hour, the taken case is never flagged unassigned.
    for _ in range(4):
        await advance(clock, tick, 20 * M)
    assert clock.now() > START + H
    case = await service.get_case(ref)
    assert (case.assignee, case.unassigned_flagged_at) == ("test-engineer-staff", None)
    assert await _flags(service, ref) == []


@pytest.mark.parametrize("hand_back", list(HAND_BACKS))
async def test_back_in_the_queue_is_flagged_an_hour_later_once(
    hand_back: str,
    staff: httpx.AsyncClient,
    service: CaseService,
    clock: FakeClock,
    tick: CaseTicker,
    ref: str,
) -> None:
    clock.advance(5 * M)
    await _post(staff, f"/v1/cases/{ref}/take")
    clock.advance(5 * M)
    await _post(staff, f"/v1/cases/{ref}/comments", {"body": "We see it.", "visibility": "public"})
    responded_at = clock.now()
    await advance(clock, tick, START + 2 * H - clock.now())  # +2 h: taken, never flagged
    assert await _flags(service, ref) == []

    action, body = HAND_BACKS[hand_back]
    await _post(staff, f"/v1/cases/{ref}/{action}", body)
    handed_back = clock.now()
    case = await service.get_case(ref)
    assert (case.assignee, case.unassigned_flagged_at) == (None, None)
    assert case.unassigned_due_at == handed_back + H
    # Handing back is not a response either way: the first one stands.
    assert case.first_responded_at == responded_at

    await advance(clock, tick, 59 * M)
    assert await _flags(service, ref) == []
    await advance(clock, tick, M)
    assert (await service.get_case(ref)).unassigned_flagged_at == handed_back + H
    assert await _flags(service, ref) == [{"due_at": (handed_back + H).isoformat()}]
    # Once: later ticks leave the flag as it is.
    for _ in range(3):
        await advance(clock, tick, 30 * M)
    assert len(await _flags(service, ref)) == 1
    assert (await service.get_case(ref)).unassigned_flagged_at == handed_back + H


async def test_a_flagged_case_taken_late_and_handed_back_is_flagged_again(
    staff: httpx.AsyncClient,
    service: CaseService,
    clock: FakeClock,
    tick: CaseTicker,
    ref: str,
) -> None:
    await advance(clock, tick, H)
    assert await _flags(service, ref) == [{"due_at": (START + H).isoformat()}]
    clock.advance(10 * M)
    await _post(staff, f"/v1/cases/{ref}/take")
    clock.advance(20 * M)
    await _post(staff, f"/v1/cases/{ref}/assign", {"assignee": None})
    handed_back = clock.now()
    # Re-armed: the old flag is cleared and a new hour starts at the hand-back.
    case = await service.get_case(ref)
    assert (case.unassigned_flagged_at, case.unassigned_due_at) == (None, handed_back + H)
    await advance(clock, tick, 59 * M)
    assert len(await _flags(service, ref)) == 1
    await advance(clock, tick, M)
    assert [flag["due_at"] for flag in await _flags(service, ref)] == [
        (START + H).isoformat(),
        (handed_back + H).isoformat(),
    ]


async def test_a_hand_off_naming_an_assignee_is_not_back_in_the_queue(
    staff: httpx.AsyncClient,
    service: CaseService,
    clock: FakeClock,
    tick: CaseTicker,
    ref: str,
) -> None:
    clock.advance(5 * M)
    await _post(staff, f"/v1/cases/{ref}/take")
    await _post(staff, f"/v1/cases/{ref}/comments", {"body": "We see it.", "visibility": "public"})
    await _post(staff, f"/v1/cases/{ref}/handoff", {**HANDOFF, "assignee": "bob"})
    for _ in range(4):
        await advance(clock, tick, 30 * M)
    case = await service.get_case(ref)
    assert (case.assignee, case.escalation_level) == ("bob", EscalationLevel.L2)
    assert (case.unassigned_flagged_at, await _flags(service, ref)) == (None, [])


async def test_every_public_update_keeps_the_promised_next_update_not_only_the_first(
    staff: httpx.AsyncClient,
    service: CaseService,
    clock: FakeClock,
    tick: CaseTicker,
    ref: str,
) -> None:
    await _post(staff, f"/v1/cases/{ref}/comments", {"body": "We are on it."})  # first response
    promise = {"kind": "next_update", "due_at": (clock.now() + H).isoformat()}
    await _post(staff, f"/v1/cases/{ref}/commitments", promise)
    internal = {"body": "supplier ticket 7", "visibility": "internal"}
    await _post(staff, f"/v1/cases/{ref}/comments", internal)
    assert await events_of(service, ref, CaseEventKind.COMMITMENT_MET) == []
    await advance(clock, tick, 40 * M)
    await _post(staff, f"/v1/cases/{ref}/comments", {"body": "The supplier is on site."})
    met = await events_of(service, ref, CaseEventKind.COMMITMENT_MET)
    assert [(m["kind"], m["late"]) for m in met] == [("next_update", False)]
    await advance(clock, tick, 2 * H)  # the promise was kept: nothing is missed later
    assert await events_of(service, ref, CaseEventKind.COMMITMENT_MISSED) == []
    assert len(await events_of(service, ref, CaseEventKind.FIRST_RESPONSE)) == 1
