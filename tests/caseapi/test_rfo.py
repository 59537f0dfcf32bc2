"""RFO: generated facts, drafts, publication, immutable versions, JSON and Markdown."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from caseapi.auth.principal import Role
from caseapi.cases import repository as case_repository
from caseapi.cases.enums import CaseEventKind
from caseapi.cases.service import CaseService
from caseapi.incidents import IncidentService, ntu_down_key
from caseapi.rfo.errors import RfoPublishedError
from caseapi.rfo.facts import impact_duration
from caseapi.rfo.models import RfoVersion
from caseapi.rfo.service import apply_changes
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import add_customer, authed_client, make_app, problem
from tests.caseapi.conftest import START, Database, incident
from tests.caseapi.rfo_checks import assert_rfo_tells_the_case

CAUSE = {
    "root_cause_category": "access_circuit",
    "root_cause": "Fibre cut by road works.",
    "corrective_actions": "Supplier spliced the fibre.",
    "preventive_actions": "Second path ordered.",
}


@pytest.fixture
async def app(database: Database, service: CaseService, clock: FakeClock) -> FastAPI:
    for customer in ("acme", "umbrella"):
        await add_customer(database.sessionmaker, customer)
    return make_app(database, service, clock)


@pytest.fixture
async def ref(incidents: IncidentService, clock: FakeClock) -> str:
    ref = await incidents.open_incident(incident("ntu-1", customer_id="acme"))
    clock.advance(timedelta(minutes=50))
    await incidents.restore_incident(dedup_key=ntu_down_key("ntu-1"), restored_at=clock.now())
    return ref


async def test_draft_preview_has_the_generated_facts(app: FastAPI, ref: str) -> None:
    async with authed_client(app, role=Role.ENGINEER) as engineer:
        body = (await engineer.get(f"/v1/cases/{ref}/rfo")).json()
    assert (body["version"], body["status"], body["saved"]) == (1, "draft", False)
    facts = body["facts"]
    assert facts["impact_start"] == "2026-03-01T11:50:00+00:00"
    assert facts["impact_end"] == "2026-03-01T12:50:00+00:00"
    assert facts["impact_duration_seconds"] == 3600
    assert facts["impact_ongoing"] is False
    assert facts["detected_at"] == "2026-03-01T12:00:00+00:00"
    assert facts["opened_at"] == "2026-03-01T12:00:00+00:00"
    assert (facts["services"], facts["sites"]) == (["svc-ntu-1"], ["site of ntu-1"])
    events = [entry["event"] for entry in facts["timeline"]]
    assert events[:3] == ["outage_start", "detected", "opened"]
    assert events[-2:] == ["restored", "solved"]


async def test_open_impact_is_ongoing_never_negative(
    app: FastAPI, incidents: IncidentService, clock: FakeClock
) -> None:
    ref = await incidents.open_incident(incident("ntu-2", customer_id="acme"))
    async with authed_client(app, role=Role.NOC) as noc:
        facts = (await noc.get(f"/v1/cases/{ref}/rfo")).json()["facts"]
    assert (facts["impact_end"], facts["impact_ongoing"]) == (None, True)
    assert facts["impact_duration_seconds"] == 600  # so far
    assert impact_duration(START, START - timedelta(hours=1)) == timedelta(0)
    assert impact_duration(None, START) is None


async def test_publish_makes_it_visible_and_versions_corrections(
    app: FastAPI, ref: str, database: Database, clock: FakeClock
) -> None:
    async with authed_client(app, role=Role.CUSTOMER, customer_id="acme") as acme:
        problem(await acme.get(f"/v1/cases/{ref}/rfo"), 404, "rfo_not_found")
        async with authed_client(app, role=Role.ENGINEER) as engineer:
            problem(await engineer.post(f"/v1/cases/{ref}/rfo/publish"), 409, "rfo_incomplete")
            saved = await engineer.put(f"/v1/cases/{ref}/rfo", json={"root_cause": "cut"})
            assert (saved.json()["version"], saved.json()["saved"]) == (1, True)
            missing = problem(
                await engineer.post(f"/v1/cases/{ref}/rfo/publish"), 409, "rfo_incomplete"
            )
            assert "root_cause_category" in missing["detail"]
            assert "root_cause_category" in missing["missing"]
            await engineer.put(f"/v1/cases/{ref}/rfo", json=CAUSE)
            # A customer never sees a draft.
            problem(await acme.get(f"/v1/cases/{ref}/rfo"), 404, "rfo_not_found")
            published = await engineer.post(f"/v1/cases/{ref}/rfo/publish")
            assert published.status_code == 200, published.text
            assert published.json()["status"] == "published"
            v1 = (await acme.get(f"/v1/cases/{ref}/rfo")).json()
            assert (v1["version"], v1["root_cause"]) == (1, CAUSE["root_cause"])
            problem(await engineer.post(f"/v1/cases/{ref}/rfo/publish"), 409, "rfo_published")

            clock.advance(timedelta(hours=1))
            correction = await engineer.put(
                f"/v1/cases/{ref}/rfo", json={"root_cause": "Fibre cut by a digger."}
            )
            body = correction.json()
            assert (body["version"], body["status"]) == (2, "draft")
            assert body["corrective_actions"] == CAUSE["corrective_actions"]  # carried over
            # The customer still sees version 1 until version 2 is published.
            assert (await acme.get(f"/v1/cases/{ref}/rfo")).json()["version"] == 1
            await engineer.post(f"/v1/cases/{ref}/rfo/publish")
            latest = (await acme.get(f"/v1/cases/{ref}/rfo")).json()
            assert (latest["version"], latest["root_cause"]) == (2, "Fibre cut by a digger.")
            problem(await acme.get(f"/v1/cases/{ref}/rfo?version=1"), 404, "rfo_not_found")
            old = (await engineer.get(f"/v1/cases/{ref}/rfo?version=1")).json()
            assert old == v1  # a published version never changes
            problem(await engineer.get(f"/v1/cases/{ref}/rfo?version=9"), 404, "rfo_not_found")
    async with database.sessionmaker() as session:
        case = await case_repository.get_case_by_ref(session, ref=ref)
        assert case is not None and case.rfo_published_at == START + timedelta(minutes=50)
        events = await case_repository.list_events(session, case_id=case.id)
    published_events = [e for e in events if e.kind is CaseEventKind.RFO_PUBLISHED]
    assert len(published_events) == 2
    assert published_events[1].data == {"version": 2, "correction": True}


async def test_service_refuses_to_change_a_published_version(
    app: FastAPI, ref: str, database: Database
) -> None:
    async with authed_client(app, role=Role.ENGINEER) as engineer:
        await engineer.put(f"/v1/cases/{ref}/rfo", json=CAUSE)
        await engineer.post(f"/v1/cases/{ref}/rfo/publish")
    async with database.sessionmaker() as session:
        row = (await session.execute(select(RfoVersion))).scalar_one()
        with pytest.raises(RfoPublishedError):
            apply_changes(row, {"root_cause": "x"}, at=START, actor="t", ref=ref)
        assert row.root_cause == CAUSE["root_cause"]
    for statement in ("UPDATE rfo_versions SET root_cause = 'forged'", "DELETE FROM rfo_versions"):
        async with database.engine.connect() as conn:
            with pytest.raises(DBAPIError, match="immutable"):
                await conn.execute(text(statement))


async def test_markdown(app: FastAPI, ref: str) -> None:
    async with authed_client(app, role=Role.ENGINEER) as engineer:
        draft = await engineer.get(f"/v1/cases/{ref}/rfo?format=md")
        assert draft.headers["content-type"] == "text/markdown; charset=utf-8"
        assert "DRAFT" in draft.text and "_not provided yet_" in draft.text
        await engineer.put(f"/v1/cases/{ref}/rfo", json=CAUSE)
        await engineer.post(f"/v1/cases/{ref}/rfo/publish")
    async with authed_client(app, role=Role.CUSTOMER, customer_id="acme") as acme:
        text_ = (await acme.get(f"/v1/cases/{ref}/rfo?format=md")).text
    assert text_.startswith(f"# Reason for outage: {ref}")
    for fragment in [
        "| Duration | 1 h |",
        "svc-ntu-1",
        "site of ntu-1",
        "Fibre cut by road works.",
    ]:
        assert fragment in text_
    assert "published" in text_


async def test_tenancy_and_roles(app: FastAPI, ref: str) -> None:
    async with authed_client(app, role=Role.ENGINEER) as engineer:
        await engineer.put(f"/v1/cases/{ref}/rfo", json=CAUSE)
        await engineer.post(f"/v1/cases/{ref}/rfo/publish")
    async with authed_client(app, role=Role.CUSTOMER, customer_id="umbrella") as umbrella:
        problem(await umbrella.get(f"/v1/cases/{ref}/rfo"), 404, "rfo_not_found")
        problem(await umbrella.get("/v1/cases/CS-1999-000001/rfo"), 404, "rfo_not_found")
        problem(await umbrella.put(f"/v1/cases/{ref}/rfo", json=CAUSE), 403, "forbidden")
    async with authed_client(app, role=Role.CUSTOMER, customer_id="acme") as acme:
        problem(await acme.put(f"/v1/cases/{ref}/rfo", json=CAUSE), 403, "forbidden")
        problem(await acme.post(f"/v1/cases/{ref}/rfo/publish"), 403, "forbidden")
    async with authed_client(app, role=Role.SERVICE) as service:
        problem(await service.get(f"/v1/cases/{ref}/rfo"), 403, "forbidden")
    async with authed_client(app, role=Role.ADMIN) as admin:
        problem(await admin.get("/v1/cases/CS-1999-000001/rfo"), 404, "case_not_found")
        bad = await admin.put(f"/v1/cases/{ref}/rfo", json={"root_cause_category": "aliens"})
        problem(bad, 422, "validation_error")


async def test_publishing_needs_preventive_actions_or_the_reason_they_do_not_apply(
    app: FastAPI, ref: str
) -> None:
    without = {name: value for name, value in CAUSE.items() if name != "preventive_actions"}
    async with authed_client(app, role=Role.ENGINEER) as engineer:
        await engineer.put(f"/v1/cases/{ref}/rfo", json=without)
        refused = problem(
            await engineer.post(f"/v1/cases/{ref}/rfo/publish"), 409, "rfo_incomplete"
        )
        assert refused["missing"] == [
            "preventive_actions (or preventive_not_applicable with the reason)"
        ]
        blank = {"preventive_not_applicable": "   "}
        await engineer.put(f"/v1/cases/{ref}/rfo", json=blank)
        problem(await engineer.post(f"/v1/cases/{ref}/rfo/publish"), 409, "rfo_incomplete")
        reason = "One-off road works; the supplier's route is already diverse."
        await engineer.put(f"/v1/cases/{ref}/rfo", json={"preventive_not_applicable": reason})
        published = await engineer.post(f"/v1/cases/{ref}/rfo/publish")
        assert published.status_code == 200, published.text
        assert published.json()["preventive_not_applicable"] == reason
    async with authed_client(app, role=Role.CUSTOMER, customer_id="acme") as acme:
        markdown = (await acme.get(f"/v1/cases/{ref}/rfo?format=md")).text
    assert f"## Preventive actions\n\nNot applicable: {reason}" in markdown


async def test_the_rfo_tells_the_worked_case_in_order(
    app: FastAPI, incidents: IncidentService, clock: FakeClock
) -> None:
    ref = await incidents.open_incident(incident("ntu-2", customer_id="acme"))
    async with authed_client(app, role=Role.ENGINEER) as engineer:
        clock.advance(timedelta(minutes=4))
        assert (await engineer.post(f"/v1/cases/{ref}/take")).is_success
        clock.advance(timedelta(minutes=3))
        promise = {"kind": "next_update", "due_at": (clock.now() + timedelta(hours=1)).isoformat()}
        assert (await engineer.post(f"/v1/cases/{ref}/commitments", json=promise)).is_success
        internal = {"body": "supplier ticket 42", "visibility": "internal"}
        assert (await engineer.post(f"/v1/cases/{ref}/comments", json=internal)).is_success
        clock.advance(timedelta(minutes=2))
        update = {"body": "A fibre cut near the exchange; the supplier is on the way."}
        assert (await engineer.post(f"/v1/cases/{ref}/comments", json=update)).is_success
        etr = {"etr": (clock.now() + timedelta(hours=2)).isoformat(), "note": "splicing"}
        assert (await engineer.put(f"/v1/cases/{ref}/etr", json=etr)).is_success
        # The probes saw the service back 3 minutes before the message arrived.
        clock.advance(timedelta(minutes=40))
        restored = clock.now() - timedelta(minutes=3)
        await incidents.restore_incident(dedup_key=ntu_down_key("ntu-2"), restored_at=restored)
        await engineer.put(f"/v1/cases/{ref}/rfo", json=CAUSE)
        assert (await engineer.post(f"/v1/cases/{ref}/rfo/publish")).is_success
        case = (await engineer.get(f"/v1/cases/{ref}")).json()
    async with authed_client(app, role=Role.CUSTOMER, customer_id="acme") as acme:
        rfo = (await acme.get(f"/v1/cases/{ref}/rfo")).json()
        markdown = (await acme.get(f"/v1/cases/{ref}/rfo?format=md")).text
    assert_rfo_tells_the_case(case, rfo, markdown)
    timeline = rfo["facts"]["timeline"]
    assert [entry["event"] for entry in timeline] == [
        "outage_start",
        "detected",
        "opened",
        "taken",
        "commitment",
        "public_update",
        "first_response",
        "etr",
        "restored",
        "solved",
    ]
    assert timeline[5]["description"].endswith(update["body"])
    assert timeline[7]["description"] == f"estimated restoration time: {etr['etr']}"
    assert "supplier ticket" not in str(rfo)  # internal notes stay internal
    assert rfo["facts"]["restored_at"] == restored.isoformat()
