"""The case endpoints with real API keys: codes, tenancy, idempotency, If-Match."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from caseapi.auth.principal import Role
from caseapi.cases.repository import CaseFilters
from caseapi.cases.service import CaseService
from caseapi.incidents import IncidentService
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import add_customer, authed_client, problem
from tests.caseapi.conftest import Database, incident

INTERNAL = {"dedup_key", "no_support", "assignee", "escalation_level", "version", "next_due_at"}


REQUEST = {"type": "general_request", "subject": "information_request", "summary": "usage?"}


async def test_customer_creates_idempotently(acme: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "k-1"}
    first = await acme.post("/v1/cases", json=REQUEST, headers=headers)
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["customer_id"], body["priority"], body["status"]) == ("cust-1", "P3", "new")
    assert not INTERNAL & body.keys()
    again = await acme.post("/v1/cases", json=REQUEST, headers=headers)
    assert (again.status_code, again.json()["ref"]) == (200, body["ref"])
    changed = await acme.post("/v1/cases", json={**REQUEST, "summary": "x"}, headers=headers)
    problem(changed, 422, "idempotency_key_reused")
    assert len((await acme.get("/v1/cases")).json()["data"]) == 1


async def test_customer_may_only_suggest_a_priority(acme: httpx.AsyncClient) -> None:
    bad = await acme.post("/v1/cases", json={**REQUEST, "priority": "P3"})
    assert problem(bad, 422, "validation_error")["detail"].startswith("priority")
    ok = await acme.post(
        "/v1/cases", json={"type": "incident", "summary": "down", "suggested_priority": "P1"}
    )
    assert (ok.json()["priority"], ok.json()["suggested_priority"]) == ("P2", "P1")


async def test_engineer_dispatch_needs_24h_notice(acme: httpx.AsyncClient) -> None:
    soon = {**REQUEST, "subject": "engineer_dispatch", "requested_date": "2026-03-02T11:00:00Z"}
    body = problem(await acme.post("/v1/cases", json=soon), 422, "validation_error")
    assert "requested_date" in body["detail"]
    assert "at least 1d notice" in body["detail"]
    later = {**soon, "requested_date": "2026-03-02T12:00:00Z"}
    assert (await acme.post("/v1/cases", json=later)).status_code == 201


@pytest.mark.parametrize(
    ("status", "code"), [("expired", "contract_expired"), ("unpaid", "account_suspended_unpaid")]
)
async def test_no_support_contracts_are_refused(
    app: FastAPI, database: Database, status: str, code: str
) -> None:
    await add_customer(database.sessionmaker, f"c-{status}", contract_status=status)
    async with authed_client(app, role=Role.CUSTOMER, customer_id=f"c-{status}") as client:
        problem(await client.post("/v1/cases", json=REQUEST), 403, code)


async def test_tenancy_another_customers_case_is_404(
    incidents: IncidentService,
    acme: httpx.AsyncClient,
    other: httpx.AsyncClient,
) -> None:
    ref = await incidents.open_incident(incident("ntu-1", customer_id="cust-1"))
    assert (await acme.get(f"/v1/cases/{ref}")).status_code == 200
    for method, path in [
        ("GET", f"/v1/cases/{ref}"),
        ("GET", f"/v1/cases/{ref}/timeline"),
        ("POST", f"/v1/cases/{ref}/escalate"),
        ("POST", f"/v1/cases/{ref}/reopen"),
        ("POST", f"/v1/cases/{ref}/reply"),
    ]:
        problem(await other.request(method, path), 404, "case_not_found")
    assert (await other.get("/v1/cases")).json()["data"] == []


async def test_customer_view_hides_internal_fields_and_events(
    incidents: IncidentService,
    staff: httpx.AsyncClient,
    acme: httpx.AsyncClient,
) -> None:
    ref = await incidents.open_incident(incident("ntu-1", customer_id="cust-1"))
    await staff.post(f"/v1/cases/{ref}/assign", json={"assignee": "bob"})
    handoff = {"to_level": "L2", "summary": "s", "details": "d", "hypotheses": ["fibre cut"]}
    assert (await staff.post(f"/v1/cases/{ref}/handoff", json=handoff)).status_code == 200
    seen = (await acme.get(f"/v1/cases/{ref}")).json()
    assert not INTERNAL & seen.keys()
    full = (await staff.get(f"/v1/cases/{ref}")).json()
    assert (full["assignee"], full["escalation_level"]) == (None, "L2")  # handed to the L2 queue
    kinds = [e["kind"] for e in (await acme.get(f"/v1/cases/{ref}/timeline")).json()["data"]]
    assert "handed_off" not in kinds
    assert "assigned" not in kinds
    text = (await acme.get(f"/v1/cases/{ref}/timeline")).text
    assert "fibre cut" not in text
    assert "ntu:ntu-1:down" not in text


async def test_staff_only_endpoints_are_403_for_customers(
    incidents: IncidentService, acme: httpx.AsyncClient
) -> None:
    ref = await incidents.open_incident(incident("ntu-1", customer_id="cust-1"))
    for path, body in [
        ("transitions", {"to": "in_progress"}),
        ("assign", {"assignee": "x"}),
        ("take", None),
        ("commitments", {"kind": "next_update", "within_minutes": 30}),
    ]:
        problem(await acme.post(f"/v1/cases/{ref}/{path}", json=body), 403, "forbidden")


async def test_transitions_are_guarded(
    incidents: IncidentService, staff: httpx.AsyncClient
) -> None:
    ref = await incidents.open_incident(incident("ntu-1"))
    body = problem(
        await staff.post(f"/v1/cases/{ref}/transitions", json={"to": "closed"}),
        409,
        "invalid_transition",
    )
    assert "new" in body["detail"]
    assert "closed" in body["detail"]
    no_method = await staff.post(f"/v1/cases/{ref}/transitions", json={"to": "solved"})
    problem(no_method, 422, "validation_error")
    solve = {"to": "solved", "resolution_method": "reboot", "root_cause_category": "software"}
    done = await staff.post(f"/v1/cases/{ref}/transitions", json=solve)
    assert done.json()["status"] == "solved"


async def test_if_match(incidents: IncidentService, staff: httpx.AsyncClient) -> None:
    ref = await incidents.open_incident(incident("ntu-1"))
    tag = (await staff.get(f"/v1/cases/{ref}")).headers["etag"]
    taken = await staff.post(f"/v1/cases/{ref}/take", headers={"If-Match": tag})
    assert taken.status_code == 200
    assert taken.headers["etag"] != tag
    stale = await staff.patch(
        f"/v1/cases/{ref}", json={"priority": "P2"}, headers={"If-Match": tag}
    )
    problem(stale, 412, "precondition_failed")
    fresh = await staff.patch(
        f"/v1/cases/{ref}", json={"priority": "P2"}, headers={"If-Match": taken.headers["etag"]}
    )
    assert fresh.json()["priority"] == "P2"


async def test_customer_escalation_needs_a_miss(
    service: CaseService,
    incidents: IncidentService,
    clock: FakeClock,
    database: Database,
    acme: httpx.AsyncClient,
) -> None:
    from tests.caseapi.lifecycle_fixtures import ticker

    ref = await incidents.open_incident(incident("ntu-1", customer_id="cust-1"))
    body = problem(await acme.post(f"/v1/cases/{ref}/escalate"), 409, "escalation_not_allowed")
    assert "no commitment has been missed" in body["detail"]
    clock.advance(timedelta(minutes=31))
    await ticker(database, clock, service).run_once()
    assert (await acme.post(f"/v1/cases/{ref}/escalate")).status_code == 200
    assert (await service.get_case(ref)).escalation_level.value == "L3"


async def test_list_filters_for_staff(incidents: IncidentService, staff: httpx.AsyncClient) -> None:
    ref = await incidents.open_incident(incident("ntu-1"))
    await incidents.open_incident(incident("ntu-2"))
    await staff.post(f"/v1/cases/{ref}/assign", json={"assignee": "bob"})
    mine = (await staff.get("/v1/cases?assignee=bob")).json()
    assert [c["ref"] for c in mine["data"]] == [ref]
    assert (await staff.get("/v1/cases?escalation_level=L2")).json()["count"] == 0
    assert (await staff.get("/v1/cases?type=incident")).json()["count"] == 2


async def test_invalid_transition_problem_names_from_and_to(
    staff: httpx.AsyncClient, incidents: IncidentService
) -> None:
    ref = await incidents.open_incident(incident("ntu-1"))
    response = await staff.post(f"/v1/cases/{ref}/transitions", json={"to": "rfo_pending"})
    body = problem(response, 409, "invalid_transition")
    assert (body["from"], body["to"]) == ("new", "rfo_pending")
    assert body["instance"] == f"/v1/cases/{ref}/transitions"
    # Business-rule validation keeps its ``errors`` list too.
    solve = await staff.post(f"/v1/cases/{ref}/transitions", json={"to": "solved"})
    errors = problem(solve, 422, "validation_error")["errors"]
    assert errors == [{"field": "resolution_method", "message": "required to solve a case"}]


async def test_customer_cannot_open_a_case_on_another_customers_ntu_or_account(
    acme: httpx.AsyncClient, service: CaseService
) -> None:
    on_their_ntu = {"type": "incident", "summary": "down", "ntu_id": "ntu-9"}
    problem(await acme.post("/v1/cases", json=on_their_ntu), 404, "ntu_not_found")
    # Another customer_id in the body is refused, not replaced by the key's customer.
    foreign = await acme.post("/v1/cases", json={**REQUEST, "customer_id": "cust-2"})
    assert problem(foreign, 403, "customer_mismatch")["field"] == "customer_id"
    page = await service.list_cases(filters=CaseFilters(customer_id="cust-2"))
    assert page.count == 0
    created = await acme.post("/v1/cases", json={**REQUEST, "customer_id": "cust-1"})
    assert (created.status_code, created.json()["customer_id"]) == (201, "cust-1")
