"""Cancelling a case: customers withdraw their own requests, support any case being worked.

Through the API (real keys, real app) on SQLite and PostgreSQL, plus the pure rule over
every status: who may cancel what, what the timeline and the clocks show afterwards,
and how a refusal answers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

import httpx
import pytest
from fastapi import FastAPI

from caseapi.auth.principal import Role
from caseapi.cases import lifecycle
from caseapi.cases.enums import (
    WORKING_STATUSES,
    CaseEventKind,
    CasePriority,
    CaseSource,
    CaseStatus,
    CaseType,
)
from caseapi.cases.errors import CancelNotAllowedError, InvalidTransitionError
from caseapi.cases.service import CaseService
from caseapi.cases.snapshot import Cancel
from caseapi.feed import entries_after
from caseapi.incidents import Affected, IncidentService, UpstreamOpen
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import authed_client, problem
from tests.caseapi.conftest import START, Database, incident
from tests.caseapi.lifecycle_fixtures import POLICY, advance, kinds, notifications, snapshot
from tests.caseapi.lifecycle_fixtures import ticker as make_ticker

QUERY: Final = {"type": "general_request", "subject": "information_request", "summary": "usage?"}
OUTAGE: Final = {"type": "incident", "summary": "site down since 9:00", "ntu_id": "ntu-2"}
SOLVE: Final = {
    "to": "solved",
    "resolution_method": "remote",
    "root_cause_category": "not_applicable",
}
H: Final = timedelta(hours=1)
D: Final = timedelta(days=1)


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def _open(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await client.post("/v1/cases", json=body)
    assert response.status_code == 201, response.text
    ref: str = response.json()["ref"]
    return ref


async def _cancel(client: httpx.AsyncClient, ref: str, reason: str) -> httpx.Response:
    return await client.post(f"/v1/cases/{ref}/cancel", json={"reason": reason})


async def _cancellations(client: httpx.AsyncClient, ref: str) -> list[dict[str, Any]]:
    timeline = (await client.get(f"/v1/cases/{ref}/timeline")).json()["data"]
    return [e for e in timeline if e["kind"] == "status_changed" and e["data"]["to"] == "cancelled"]


# -- customers cancel their own requests -------------------------------------------------


async def test_customer_cancels_own_general_request(
    acme: httpx.AsyncClient,
    database: Database,
    service: CaseService,
    clock: FakeClock,
) -> None:
    ref = await _open(acme, QUERY)
    clock.advance(timedelta(minutes=5))
    response = await _cancel(acme, ref, "found the report in the portal")
    assert response.status_code == 200, response.text
    case = response.json()
    assert (case["status"], _at(case["closed_at"])) == ("cancelled", clock.now())
    # The customer's own timeline says who cancelled, when and why.
    [entry] = await _cancellations(acme, ref)
    assert (_at(entry["at"]), entry["actor"]) == (clock.now(), "customer:test-customer-cust-1")
    assert entry["data"] == {
        "from": "new",
        "to": "cancelled",
        "reason": "found the report in the portal",
    }
    # Timers stop: nothing is due, and hours later the ticker finds nothing to do.
    assert (await service.get_case(ref)).next_due_at is None
    tick = make_ticker(database, clock, service)
    assert await advance(clock, tick, 2 * H) == 0
    assert (await kinds(service, ref))[-1] is CaseEventKind.STATUS_CHANGED


@pytest.mark.parametrize("source", ["api", "email", "phone"])
async def test_customer_cancels_own_reactive_incident(
    source: str,
    acme: httpx.AsyncClient,
    staff: httpx.AsyncClient,
    database: Database,
    service: CaseService,
    clock: FakeClock,
) -> None:
    # Support records phone and e-mail requests for the customer; the portal is "api".
    if source == "api":
        ref = await _open(acme, OUTAGE)
    else:
        ref = await _open(staff, {**OUTAGE, "customer_id": "cust-1", "source": source})
    # Waiting on the customer: a reminder and an auto-close are armed.
    waiting = await staff.post(f"/v1/cases/{ref}/transitions", json={"to": "waiting_customer"})
    assert waiting.status_code == 200, waiting.text
    clock.advance(H)
    response = await _cancel(acme, ref, "it was our own switch; sorry")
    assert response.status_code == 200, response.text
    case_view = response.json()
    assert (case_view["status"], _at(case_view["closed_at"])) == ("cancelled", clock.now())
    case = await service.get_case(ref)
    assert case.source is CaseSource(source)
    assert (case.next_due_at, case.reminder_due_at, case.auto_close_due_at) == (None, None, None)
    [entry] = await _cancellations(staff, ref)
    assert entry["actor"] == "customer:test-customer-cust-1"
    assert entry["data"] == {
        "from": "waiting_customer",
        "to": "cancelled",
        "reason": "it was our own switch; sorry",
    }
    # No breach, reminder or auto-close later: the case is finished.
    tick = make_ticker(database, clock, service)
    assert await advance(clock, tick, 5 * D) == 0
    assert await notifications(database) == []


async def test_support_learns_of_a_customer_cancel_on_the_case_feed(
    acme: httpx.AsyncClient, database: Database
) -> None:
    # The feed (relayed to the bus by nms) carries every timeline row with the case's status.
    ref = await _open(acme, QUERY)
    assert (await _cancel(acme, ref, "no longer needed")).status_code == 200
    feed = await entries_after(database.sessionmaker, after=0, limit=100)
    assert [(e.ref, e.kind, e.status) for e in feed][-1] == (ref, "status_changed", "cancelled")


# -- what a customer may not cancel -----------------------------------------------------


async def test_customer_may_not_cancel_a_proactive_incident(
    acme: httpx.AsyncClient, service: CaseService, incidents: IncidentService
) -> None:
    ref = await incidents.open_incident(incident("ntu-1"))
    body = problem(await _cancel(acme, ref, "we rebooted it ourselves"), 409, "cancel_not_allowed")
    assert "proactive incidents are closed by support" in body["detail"]
    case = await service.get_case(ref)
    assert (case.status, case.version, case.closed_at) == (CaseStatus.NEW, 1, None)


async def test_customer_may_not_cancel_a_case_linked_to_an_upstream_incident(
    acme: httpx.AsyncClient, database: Database, incidents: IncidentService
) -> None:
    await incidents.open_upstream_incident(
        UpstreamOpen(
            node_id="pop1",
            dedup_key="node:pop1:down",
            site="London",
            outage_start=START - timedelta(minutes=10),
            detected_at=START,
            summary="Node pop1 down",
            affected=(Affected("ntu-1", "cust-1"),),
        )
    )
    [own] = (await acme.get("/v1/cases")).json()["data"]
    assert (await acme.get(f"/v1/cases/{own['ref']}")).json()["parent"] is not None
    problem(await _cancel(acme, own["ref"], "not us"), 409, "cancel_not_allowed")


async def test_another_customers_case_is_404_as_for_reads(
    acme: httpx.AsyncClient, other: httpx.AsyncClient, service: CaseService
) -> None:
    ref = await _open(acme, QUERY)
    read = problem(await other.get(f"/v1/cases/{ref}"), 404, "case_not_found")
    cancel = problem(await _cancel(other, ref, "mine now"), 404, "case_not_found")
    missing = problem(await _cancel(other, "CS-1999-000001", "x"), 404, "case_not_found")
    assert (cancel["title"], cancel["detail"]) == (read["title"], read["detail"])
    assert missing.keys() == cancel.keys()
    assert (await service.get_case(ref)).status is CaseStatus.NEW


async def test_a_cancelled_case_cannot_be_cancelled_again(
    acme: httpx.AsyncClient, staff: httpx.AsyncClient
) -> None:
    ref = await _open(acme, QUERY)
    assert (await _cancel(acme, ref, "first")).status_code == 200
    for client in (acme, staff):
        body = problem(await _cancel(client, ref, "again"), 409, "invalid_transition")
        assert (body["from"], body["to"]) == ("cancelled", "cancelled")
    assert len(await _cancellations(staff, ref)) == 1


async def test_a_closed_case_cannot_be_cancelled(
    acme: httpx.AsyncClient,
    staff: httpx.AsyncClient,
    database: Database,
    service: CaseService,
    clock: FakeClock,
) -> None:
    ref = await _open(acme, QUERY)
    assert (await staff.post(f"/v1/cases/{ref}/transitions", json=SOLVE)).status_code == 200
    # Solved, inside its monitoring window: not being worked, so not cancellable either.
    body = problem(await _cancel(acme, ref, "done"), 409, "invalid_transition")
    assert (body["from"], body["to"]) == ("solved", "cancelled")
    await advance(
        clock, make_ticker(database, clock, service), POLICY.monitoring_window[CasePriority.P3]
    )
    assert (await service.get_case(ref)).status is CaseStatus.CLOSED
    for client in (acme, staff):
        body = problem(await _cancel(client, ref, "done"), 409, "invalid_transition")
        assert (body["from"], body["to"]) == ("closed", "cancelled")


async def test_a_merged_case_cannot_be_cancelled(
    acme: httpx.AsyncClient, staff: httpx.AsyncClient, service: CaseService
) -> None:
    ref = await _open(acme, QUERY)
    merge = {"to": "merged", "reason": "duplicate", "merged_into": "CS-2026-000099"}
    assert (await staff.post(f"/v1/cases/{ref}/transitions", json=merge)).status_code == 200
    problem(await _cancel(acme, ref, "x"), 409, "invalid_transition")
    assert (await service.get_case(ref)).status is CaseStatus.MERGED


@pytest.mark.parametrize(
    "body",
    [{}, {"reason": ""}, {"reason": "   \t "}, {"reason": None}],
    ids=["missing", "empty", "blank", "null"],
)
async def test_a_reason_is_required(
    body: dict[str, Any], acme: httpx.AsyncClient, service: CaseService
) -> None:
    ref = await _open(acme, QUERY)
    refused = problem(
        await acme.post(f"/v1/cases/{ref}/cancel", json=body), 422, "validation_error"
    )
    assert [error["field"] for error in refused["errors"]] == ["reason"]
    assert refused["detail"].startswith("reason: ")
    assert (await service.get_case(ref)).status is CaseStatus.NEW


async def test_no_body_is_422(acme: httpx.AsyncClient) -> None:
    ref = await _open(acme, QUERY)
    problem(await acme.post(f"/v1/cases/{ref}/cancel"), 422, "validation_error")


async def test_service_callers_may_not_cancel(app: FastAPI, acme: httpx.AsyncClient) -> None:
    ref = await _open(acme, QUERY)
    async with authed_client(app, role=Role.SERVICE) as machine:
        problem(await _cancel(machine, ref, "x"), 403, "forbidden")


# -- support ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.ENGINEER, Role.NOC, Role.ADMIN])
async def test_staff_cancel_any_case_being_worked(
    role: Role,
    app: FastAPI,
    database: Database,
    service: CaseService,
    incidents: IncidentService,
    clock: FakeClock,
) -> None:
    ref = await incidents.open_incident(incident("ntu-1"))  # proactive: staff may
    async with authed_client(app, role=role) as client:
        assert (await client.post(f"/v1/cases/{ref}/take")).status_code == 200
        clock.advance(timedelta(minutes=10))
        response = await _cancel(client, ref, "test outage, raised by mistake")
        assert response.status_code == 200, response.text
        [entry] = await _cancellations(client, ref)
    assert entry["actor"] == f"{role.value}:test-{role.value}-staff"
    assert entry["data"] == {
        "from": "in_progress",
        "to": "cancelled",
        "reason": "test outage, raised by mistake",
    }
    case = await service.get_case(ref)
    assert (case.status, case.closed_at, case.next_due_at) == (
        CaseStatus.CANCELLED,
        clock.now(),
        None,
    )
    # The first-response deadline passes unremarked: a cancelled case has no clocks.
    assert await advance(clock, make_ticker(database, clock, service), H) == 0
    assert (await service.get_case(ref)).first_response_breached_at is None


async def test_staff_cancel_honours_if_match(
    acme: httpx.AsyncClient, staff: httpx.AsyncClient
) -> None:
    ref = await _open(acme, QUERY)
    stale = {"If-Match": '"v0"'}
    response = await staff.post(f"/v1/cases/{ref}/cancel", json={"reason": "x"}, headers=stale)
    problem(response, 412, "precondition_failed")
    tag = (await staff.get(f"/v1/cases/{ref}")).headers["ETag"]
    current = {"If-Match": tag}
    response = await staff.post(f"/v1/cases/{ref}/cancel", json={"reason": "x"}, headers=current)
    assert response.status_code == 200, response.text


# -- the rule, over every status --------------------------------------------------------

CALLERS: Final = ("customer_reactive", "customer_proactive", "staff_proactive")


@pytest.mark.parametrize("status", list(CaseStatus))
@pytest.mark.parametrize("caller", CALLERS)
def test_cancel_in_every_status(status: CaseStatus, caller: str) -> None:
    source = CaseSource.API if caller == "customer_reactive" else CaseSource.PROACTIVE
    case = snapshot(status, type=CaseType.INCIDENT, source=source)
    event = Cancel(actor="x:y", reason="r", by_customer=caller.startswith("customer"))
    now = START + timedelta(minutes=5)
    if status.is_terminal:
        with pytest.raises(InvalidTransitionError):
            lifecycle.step(case, event, now, POLICY)
        return
    if caller == "customer_proactive":
        # Solved ones too: the customer is told why, not only that it is too late.
        with pytest.raises(CancelNotAllowedError):
            lifecycle.step(case, event, now, POLICY)
        return
    if status not in WORKING_STATUSES:
        # Solved and being watched, or waiting for its RFO: nothing left to withdraw.
        with pytest.raises(InvalidTransitionError):
            lifecycle.step(case, event, now, POLICY)
        return
    outcome = lifecycle.step(case, event, now, POLICY)
    assert (outcome.snapshot.status, outcome.snapshot.closed_at) == (CaseStatus.CANCELLED, now)
    assert lifecycle.next_due_at(outcome.snapshot) is None
    [entry] = outcome.entries
    assert (entry.kind, entry.actor) == (CaseEventKind.STATUS_CHANGED, "x:y")
    assert entry.data == {"from": status.value, "to": "cancelled", "reason": "r"}


def test_a_reactive_case_linked_upstream_counts_as_proactive() -> None:
    case = snapshot(CaseStatus.IN_PROGRESS, source=CaseSource.PHONE, parent_case_id=7)
    with pytest.raises(CancelNotAllowedError):
        lifecycle.step(case, Cancel(actor="c:x", reason="r", by_customer=True), START, POLICY)
    staff = lifecycle.step(case, Cancel(actor="e:x", reason="r", by_customer=False), START, POLICY)
    assert staff.snapshot.status is CaseStatus.CANCELLED
