"""Canned replies: staff CRUD, placeholders checked at save, filled per case, sent
through the comment path; the shipped examples installed once."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from caseapi.auth.principal import Role
from caseapi.cases.service import CaseService
from caseapi.comments.service import CommentService
from caseapi.customers.models import Customer
from caseapi.incidents import IncidentService
from caseapi.replies.models import CannedReply
from caseapi.replies.service import ReplyService
from caseapi.replies.shipped import SHIPPED
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import add_customer, authed_client, make_app, problem
from tests.caseapi.conftest import Database, incident

STANDARD = {"contract_blocked", "out_of_scope", "closing_confirmed", "auto_close_notice"}


@pytest.fixture
async def app(database: Database, service: CaseService, clock: FakeClock) -> FastAPI:
    for customer in ("acme", "umbrella"):
        await add_customer(database.sessionmaker, customer)
    async with database.sessionmaker() as session:
        acme = await session.get(Customer, "acme")
        assert acme is not None
        acme.attributes = {"timezone": "Europe/Rome"}
        await session.commit()
    return make_app(database, service, clock)


@pytest.fixture
async def ref(incidents: IncidentService) -> str:
    return await incidents.open_incident(incident("ntu-1", customer_id="acme"))


async def test_crud_and_placeholders_checked_at_save(app: FastAPI) -> None:
    async with authed_client(app, role=Role.ENGINEER) as staff:
        listed = (await staff.get("/v1/replies")).json()
        assert "ref" in listed["placeholders"] and "outage_start" in listed["placeholders"]
        shipped = listed["count"]
        created = await staff.post(
            "/v1/replies",
            json={
                "title": "Fibre cut",
                "body": "Case ${ref}: fibre cut at ${site}.",
                "language": "en",
            },
        )
        assert created.status_code == 201, created.text
        reply = created.json()
        assert (reply["visibility"], reply["language"], reply["shipped_key"]) == (
            "public",
            "en",
            None,
        )
        assert reply["updated_by"].startswith("engineer:")
        bad = problem(
            await staff.post("/v1/replies", json={"title": "x", "body": "Hi ${customer}"}),
            422,
            "invalid_reply_template",
        )
        assert bad["errors"][0]["field"] == "body"
        assert "${customer}" in bad["errors"][0]["message"]
        bad = problem(
            await staff.patch(f"/v1/replies/{reply['id']}", json={"title": "About $ref and $"}),
            422,
            "invalid_reply_template",
        )
        assert bad["errors"][0]["field"] == "title"
        # Unknown fields and languages are refused by the schema.
        assert (
            await staff.post("/v1/replies", json={"title": "x", "body": "y", "to": 1})
        ).status_code == 422
        assert (
            await staff.post("/v1/replies", json={"title": "x", "body": "y", "language": "fr"})
        ).status_code == 422
        patched = await staff.patch(
            f"/v1/replies/{reply['id']}", json={"visibility": "internal", "language": "it"}
        )
        assert patched.status_code == 200, patched.text
        assert (patched.json()["visibility"], patched.json()["language"]) == ("internal", "it")
        assert patched.json()["body"] == reply["body"]
        assert (await staff.get(f"/v1/replies/{reply['id']}")).json() == patched.json()
        assert (await staff.get("/v1/replies")).json()["count"] == shipped + 1
        assert (await staff.delete(f"/v1/replies/{reply['id']}")).status_code == 204
        problem(await staff.get(f"/v1/replies/{reply['id']}"), 404, "reply_not_found")
        problem(await staff.delete(f"/v1/replies/{reply['id']}"), 404, "reply_not_found")
        assert (await staff.get("/v1/replies")).json()["count"] == shipped
    async with authed_client(app, role=Role.CUSTOMER, customer_id="acme") as acme:
        assert (await acme.get("/v1/replies")).status_code == 403
        assert (await acme.post("/v1/replies", json={"title": "x", "body": "y"})).status_code == 403


async def test_send_fills_the_case_in_the_customers_zone_and_is_the_first_response(
    app: FastAPI, ref: str, clock: FakeClock
) -> None:
    async with authed_client(app, role=Role.ENGINEER) as staff:
        body = (
            "${customer_name}: ${ref} (${priority}, ${status}) started ${outage_start}; "
            "ETR ${etr}; restored ${restored_at}; with ${assignee_name}."
        )
        reply = (
            await staff.post("/v1/replies", json={"title": "T", "body": body, "language": "it"})
        ).json()
        assert (await staff.get(f"/v1/cases/{ref}")).json()["first_responded_at"] is None
        preview = await staff.get(f"/v1/cases/{ref}/replies/{reply['id']}/preview")
        assert preview.status_code == 200, preview.text
        # START - 10 min = 11:50 UTC = 12:50 in Rome (CET); unset fields in Italian.
        expected = (
            f"Acme: {ref} (P1, new) started 1 marzo 2026, 12:50 (UTC+01:00, Europe/Rome); "
            "ETR (non definito); restored (non definito); with (non definito)."
        )
        assert preview.json()["body"] == expected
        assert preview.json()["visibility"] == "public"
        # A preview writes nothing.
        assert (await staff.get(f"/v1/cases/{ref}/comments")).json()["count"] == 0
        sent = await staff.post(f"/v1/cases/{ref}/replies/{reply['id']}/send")
        assert sent.status_code == 201, sent.text
        assert sent.json()["body"] == expected and sent.json()["visibility"] == "public"
        case = (await staff.get(f"/v1/cases/{ref}")).json()
        assert case["first_responded_at"] is not None  # the comment path's rule
        problem(await staff.post(f"/v1/cases/{ref}/replies/999/send"), 404, "reply_not_found")
        problem(
            await staff.get(f"/v1/cases/CS-2099-000001/replies/{reply['id']}/preview"),
            404,
            "case_not_found",
        )
    async with authed_client(app, role=Role.CUSTOMER, customer_id="acme") as acme:
        comments = (await acme.get(f"/v1/cases/{ref}/comments")).json()
        assert [c["body"] for c in comments["data"]] == [expected]
        # Customers may not use replies, not even on their own case.
        assert (await acme.post(f"/v1/cases/{ref}/replies/{reply['id']}/send")).status_code == 403
        assert (await acme.get(f"/v1/cases/{ref}/replies/{reply['id']}/preview")).status_code == 403


async def test_internal_reply_never_reaches_the_customer(app: FastAPI, ref: str) -> None:
    marker = "INTERNAL-REPLY-MARKER"
    async with authed_client(app, role=Role.ENGINEER) as staff:
        reply = (
            await staff.post(
                "/v1/replies",
                json={"title": "note", "body": f"{marker} ${{ref}}", "visibility": "internal"},
            )
        ).json()
        sent = await staff.post(f"/v1/cases/{ref}/replies/{reply['id']}/send")
        assert sent.json()["visibility"] == "internal"
        assert (await staff.get(f"/v1/cases/{ref}")).json()["first_responded_at"] is None
    async with authed_client(app, role=Role.CUSTOMER, customer_id="acme") as acme:
        for path in (f"/v1/cases/{ref}/comments", f"/v1/cases/{ref}", f"/v1/cases/{ref}/timeline"):
            response = await acme.get(path)
            assert marker not in response.text, path


async def test_shipped_examples_are_installed_once_and_stay_deleted(
    app: FastAPI, database: Database, clock: FakeClock
) -> None:
    def start() -> ReplyService:
        comments = CommentService(sessionmaker=database.sessionmaker, clock=clock)
        return ReplyService(sessionmaker=database.sessionmaker, clock=clock, comments=comments)

    assert await start().install_shipped() == len(SHIPPED)
    assert await start().install_shipped() == 0  # a second start adds nothing
    rows = await start().list_replies()
    keys = sorted(r.shipped_key for r in rows if r.shipped_key)
    assert keys == sorted(s.key for s in SHIPPED)
    assert {key.split(".")[0] for key in keys} == STANDARD
    assert {key.split(".")[1] for key in keys} == {"en", "it"}
    # Staff delete one and edit another; a restart undoes neither.
    async with authed_client(app, role=Role.ENGINEER) as staff:
        listed: list[dict[str, Any]] = (await staff.get("/v1/replies")).json()["data"]
        by_key = {r["shipped_key"]: r for r in listed}
        gone = by_key["out_of_scope.it"]["id"]
        assert (await staff.delete(f"/v1/replies/{gone}")).status_code == 204
        edited = by_key["contract_blocked.en"]["id"]
        await staff.patch(f"/v1/replies/{edited}", json={"title": "Blocked (ours)"})
    assert await start().install_shipped() == 0
    async with database.sessionmaker() as session:
        total = await session.scalar(select(func.count()).select_from(CannedReply))
        title = await session.scalar(select(CannedReply.title).where(CannedReply.id == edited))
    assert (total, title) == (len(SHIPPED), "Blocked (ours)")
    assert gone not in [r.id for r in await start().list_replies()]


async def test_shipped_auto_close_notice_renders_in_both_languages(app: FastAPI, ref: str) -> None:
    async with authed_client(app, role=Role.ENGINEER) as staff:
        listed = (await staff.get("/v1/replies")).json()["data"]
        for reply in listed:
            preview = await staff.get(f"/v1/cases/{ref}/replies/{reply['id']}/preview")
            assert preview.status_code == 200, (reply["shipped_key"], preview.text)
            assert ref in preview.json()["body"] and "$" not in preview.json()["body"]
        italian = next(r for r in listed if r["shipped_key"] == "auto_close_notice.it")
        text = (await staff.get(f"/v1/cases/{ref}/replies/{italian['id']}/preview")).json()
        assert "Gentile Acme" in text["body"] and "(non definito)" in text["body"]
