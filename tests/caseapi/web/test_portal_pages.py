"""The customer portal's RFO, new case, maintenance and NTU pages (through HTTP)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from caseapi.auth.principal import Role
from caseapi.cases.service import CaseService
from caseapi.incidents import IncidentService, ntu_down_key
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import add_customer, authed_client
from tests.caseapi.conftest import START, incident
from tests.caseapi.pdf_tools import pdf_text, require_poppler
from tests.caseapi.web.pages import login_as

DRAFT_CAUSE = {
    "root_cause_category": "access_circuit",
    "root_cause": "Draft-only wording qq3: fibre cut by road works.",
    "corrective_actions": "Supplier spliced the fibre.",
    "preventive_actions": "Second path ordered <script>alert(1)</script>.",
}


async def _solved_incident(incidents: IncidentService, clock: FakeClock) -> str:
    ref = await incidents.open_incident(incident("ntu-1", customer_id="cust-1"))
    clock.advance(timedelta(minutes=50))
    await incidents.restore_incident(dedup_key=ntu_down_key("ntu-1"), restored_at=clock.now())
    return ref


async def test_a_draft_rfo_is_invisible_and_a_published_one_readable_and_downloadable(
    app: FastAPI, incidents: IncidentService, clock: FakeClock, tmp_path: Path
) -> None:
    ref = await _solved_incident(incidents, clock)
    async with authed_client(app, role=Role.ENGINEER) as staff:
        saved = await staff.put(f"/v1/cases/{ref}/rfo", json=DRAFT_CAUSE)
        assert saved.status_code == 200, saved.text
        async with login_as(
            app, role=Role.CUSTOMER, customer_id="cust-1", timezone="Europe/Rome"
        ) as contact:
            page = await contact.get(f"/portal/cases/{ref}")
            assert page.status_code == 200, page.text
            assert 'data-test="rfo"' not in page.text and "qq3" not in page.text
            assert 'data-test="monitoring-window"' in page.text
            assert "(UTC+01:00, Europe/Rome)" in page.text  # the reader's zone
            draft = await contact.get(f"/portal/cases/{ref}/rfo")
            draft_pdf = await contact.get(f"/portal/cases/{ref}/rfo", params={"format": "pdf"})
            assert (draft.status_code, draft_pdf.status_code) == (404, 404)
            assert "qq3" not in draft.text

            published = await staff.post(f"/v1/cases/{ref}/rfo/publish")
            assert published.status_code == 200, published.text
            page = await contact.get(f"/portal/cases/{ref}")
            assert 'data-test="rfo"' in page.text and "qq3" in page.text
            assert "Download RFO (PDF)" in page.text
            assert f'href="/portal/cases/{ref}/rfo?format=pdf"' in page.text
            # The engineer's text is escaped, never markup.
            assert "<script>alert(1)</script>" not in page.text
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
            rfo_page = await contact.get(f"/portal/cases/{ref}/rfo")
            assert rfo_page.status_code == 200 and 'data-test="rfo"' in rfo_page.text
            pdf = await contact.get(f"/portal/cases/{ref}/rfo", params={"format": "pdf"})
        async with authed_client(app, role=Role.CUSTOMER, customer_id="cust-1") as acme:
            api_pdf = await acme.get(f"/v1/cases/{ref}/rfo", params={"format": "pdf"})
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == api_pdf.headers["content-disposition"]
    assert pdf.content == api_pdf.content and pdf.content.startswith(b"%PDF")
    require_poppler()
    assert "qq3" in pdf_text(pdf.content, tmp_path)


async def test_a_customer_opens_a_case_on_one_of_its_ntus(
    app: FastAPI, service: CaseService
) -> None:
    async with login_as(app, role=Role.CUSTOMER, customer_id="cust-1") as contact:
        form = await contact.get("/portal/cases/new")
        assert form.status_code == 200
        assert 'value="ntu-1"' in form.text and 'value="ntu-2"' in form.text
        assert "ntu-9" not in form.text  # another customer's
        created = await contact.post(
            "/portal/cases/new",
            {"ntu_id": "ntu-2", "type": "incident", "summary": "No sync", "description": "red"},
        )
        assert created.status_code == 303, created.text
        location = created.headers["location"]
        assert location.startswith("/portal/cases/") and location.endswith("?done=created")
        page = await contact.get(location)
        assert "Your case was opened." in page.text and "No sync" in page.text
    ref = location.removeprefix("/portal/cases/").split("?")[0]
    case = await service.get_case(ref)
    assert (case.customer_id, case.ntu_id, case.source.value) == ("cust-1", "ntu-2", "api")


async def test_case_form_refusals_are_shown_next_to_the_form(
    app: FastAPI, service: CaseService
) -> None:
    async with login_as(app, role=Role.CUSTOMER, customer_id="cust-1") as contact:
        no_subject = await contact.post(
            "/portal/cases/new", {"type": "general_request", "summary": "Please help"}
        )
        assert no_subject.status_code == 422
        assert "a general request needs a subject" in no_subject.text
        assert 'value="Please help"' in no_subject.text  # the input is kept
        dispatch = await contact.post(
            "/portal/cases/new",
            {
                "type": "general_request",
                "subject": "engineer_dispatch",
                "summary": "Visit please",
                "requested_date": (START + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
            },
        )
        assert dispatch.status_code == 422
        assert "an engineer dispatch needs at least" in dispatch.text
        others = await contact.post(
            "/portal/cases/new", {"type": "incident", "summary": "x", "ntu_id": "ntu-9"}
        )
        assert others.status_code == 404 and "Site / NTU" in others.text
        blank = await contact.post("/portal/cases/new", {"type": "incident", "summary": ""})
        assert blank.status_code == 422 and "Summary:" in blank.text
    await add_customer(app.state.sessionmaker, "cust-lapsed", contract_status="expired")
    async with login_as(app, role=Role.CUSTOMER, customer_id="cust-lapsed") as lapsed:
        refused = await lapsed.post("/portal/cases/new", {"type": "incident", "summary": "down"})
    assert refused.status_code == 403
    assert "contract_expired" in refused.text and "no support" in refused.text
    async with authed_client(app, role=Role.ENGINEER) as staff:
        assert (await staff.get("/v1/cases")).json()["count"] == 0


async def test_maintenance_shows_the_customers_windows_by_time(
    app: FastAPI, clock: FakeClock
) -> None:
    def window(title: str, ntu: str, start_days: float, kind: str = "planned") -> dict[str, object]:
        start = clock.now() + timedelta(days=start_days)
        return {
            "title": title,
            "description": "",
            "kind": kind,
            "behaviour": "mute",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=4)).isoformat(),
            "scope": {"ntus": [ntu]},
        }

    async with authed_client(app, role=Role.ENGINEER) as staff:
        for body in (
            window("Router upgrade", "ntu-1", 15),
            window("Fibre repair now", "ntu-2", 0, kind="emergency"),
            window("Other customer's work", "ntu-9", 15),
        ):
            assert (await staff.post("/v1/maintenances", json=body)).status_code == 201
    async with login_as(app, role=Role.CUSTOMER, customer_id="cust-1") as contact:
        page = await contact.get("/portal/maintenance")
    assert page.status_code == 200
    text = page.text
    upcoming_at = text.index('data-test="maintenance-upcoming"')
    upcoming = text[upcoming_at:]
    current = text[text.index('data-test="maintenance-current"') : upcoming_at]
    assert "Router upgrade" in upcoming and "Fibre repair now" in current
    assert "Other customer" not in text and "ntu-9" not in text


async def test_ntus_page_lists_the_customers_ntus_with_status(app: FastAPI) -> None:
    async with login_as(app, role=Role.CUSTOMER, customer_id="cust-1") as contact:
        page = await contact.get("/portal/ntus")
    assert page.status_code == 200
    assert page.text.count('data-test="ntu-row"') == 2
    assert 'data-ntu="ntu-1"' in page.text and "ntu-9" not in page.text
    assert "ntu-up" in page.text  # ntu-1's state from the seed
