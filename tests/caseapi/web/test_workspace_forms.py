"""The new case form, the NTU pages and the maintenance pages."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from fastapi import FastAPI

from caseapi.auth.principal import Role
from caseapi.cases.enums import CasePriority
from caseapi.cases.service import CaseService
from caseapi.customers.models import Customer
from nms.clock import FakeClock
from tests.caseapi.conftest import Database
from tests.caseapi.web.pages import login_as
from tests.caseapi.web.workspace_fixtures import open_case, rows

CASE_FORM = {
    "customer_id": "cust-1",
    "ntu_id": "ntu-1",
    "type": "incident",
    "subject": "",
    "priority": "P1",
    "summary": "Customer phoned: site dark",
    "description": "Since 9:00",
}


async def test_support_opens_a_case_from_the_form(app: FastAPI, service: CaseService) -> None:
    async with login_as(app, role=Role.ENGINEER) as engineer:
        form = await engineer.get("/cases/new", params={"customer": "cust-1"})
        created = await engineer.post("/cases/new", CASE_FORM)
    assert form.status_code == 200
    assert '<option value="ntu-1"' in form.text and '<option value="ntu-9"' not in form.text
    assert created.status_code == 303
    ref = created.headers["location"].removeprefix("/cases/")
    case = await service.get_case(ref)
    assert (case.customer_id, case.ntu_id, case.priority) == ("cust-1", "ntu-1", CasePriority.P1)
    assert case.summary == "Customer phoned: site dark"


async def test_the_form_shows_refusals_and_keeps_the_input(
    app: FastAPI, database: Database
) -> None:
    async with database.sessionmaker() as session:
        customer = await session.get(Customer, "cust-2")
        assert customer is not None
        customer.contract_status = "expired"
        await session.commit()
    async with login_as(app, role=Role.ENGINEER) as engineer:
        expired = await engineer.post(
            "/cases/new", {**CASE_FORM, "customer_id": "cust-2", "ntu_id": ""}
        )
        foreign = await engineer.post("/cases/new", {**CASE_FORM, "ntu_id": "ntu-9"})
        p3 = await engineer.post("/cases/new", {**CASE_FORM, "priority": "P3"})
    assert expired.status_code == 403
    assert 'role="alert"' in expired.text and "contract" in expired.text
    assert 'value="Customer phoned: site dark"' in expired.text
    assert foreign.status_code == 404 and "ntu-9 is not an NTU of cust-1" in foreign.text
    assert 'data-test="new-case-form"' in foreign.text
    assert p3.status_code == 422 and "an incident is P1 or P2" in p3.text


async def test_ntu_pages_show_state_and_cases(app: FastAPI, service: CaseService) -> None:
    ref = await open_case(service, ntu="ntu-1")
    async with login_as(app, role=Role.ENGINEER) as engineer:
        listing = await engineer.get("/ntus")
        down = await engineer.get("/ntus", params={"status": "down"})
        page = await engineer.get("/ntus/ntu-1")
        missing = await engineer.get("/ntus/nope")
    async with login_as(app, role=Role.CUSTOMER, customer_id="cust-1") as customer:
        refused = await customer.get("/ntus/ntu-1")
    assert listing.status_code == 200
    assert listing.text.count('data-test="ntu-row"') == 3
    assert 'data-test="ntu-row"' not in down.text
    assert 'data-test="ntu-state">up<' in page.text and rows(page.text) == [ref]
    assert missing.status_code == 404
    assert refused.status_code == 403


async def test_short_notice_maintenance_is_refused_on_the_form(
    app: FastAPI, clock: FakeClock
) -> None:
    rome = ZoneInfo("Europe/Rome")
    soon = (clock.now() + timedelta(days=2)).astimezone(rome)
    form = {
        "title": "Router swap",
        "kind": "planned",
        "behaviour": "mute",
        "starts_at": soon.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (soon + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "scope_ntus": "ntu-1, ntu-2",
    }
    async with login_as(app, role=Role.ENGINEER, timezone="Europe/Rome") as engineer:
        short = await engineer.post("/maintenance/new", form)
        emergency = await engineer.post("/maintenance/new", {**form, "kind": "emergency"})
        assert emergency.status_code == 303, emergency.text
        where = emergency.headers["location"]
        page = await engineer.get(where)
        listing = await engineer.get("/maintenance")
        cancelled = await engineer.post(f"{where}/cancel")
        after = await engineer.get(where)
    assert short.status_code == 422
    assert 'role="alert"' in short.text
    assert "planned maintenance needs at least 14 days notice" in short.text
    assert 'value="Router swap"' in short.text and "Traceback" not in short.text
    assert page.status_code == 200 and "Router swap" in page.text
    assert "ntu-1, ntu-2" in page.text
    # The window starts at the local time typed (Rome, UTC+1 in March).
    assert soon.strftime("%H:%M") in page.text
    assert where.removeprefix("/maintenance/") in listing.text
    assert cancelled.status_code == 303
    assert 'data-test="maintenance-state">cancelled<' in after.text
