"""The audit log: a row for every state-changing call, append-only, purged, readable.

``AUDITED`` is the one table of expectations: every non-GET operation of the API and
the action its successful call records. It is checked against the OpenAPI document,
so a new state-changing route fails ``test_every_state_changing_operation_is_in_the_table``
until someone decides what it records (and makes its service call ``audit.record``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from caseapi.api.app import create_app
from caseapi.audit import repository as audit_repository
from caseapi.audit.config import AuditSettings
from caseapi.audit.enums import AuditAction
from caseapi.audit.models import AuditEvent
from caseapi.audit.service import record_action
from caseapi.auth.cli import apikey_main
from caseapi.auth.principal import Role
from caseapi.cases.service import CaseService
from caseapi.cases.ticker import CaseTicker
from caseapi.core.database import make_engine, make_sessionmaker
from caseapi.mail.inbound import InboundMail
from caseapi.notifications.models import Notification, NotificationDelivery
from caseapi.notifications.service import DeliveryService, WebhookService
from caseapi.oncall.models import StaffAlert
from caseapi.organisation import MemberRecord, RuleRecord, TeamRecord, sync_organisation
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import LAB_WEBHOOK_SETTINGS, authed_client, make_app, problem
from tests.caseapi.conftest import START, Database
from tests.caseapi.lifecycle_fixtures import seed

A = AuditAction

#: Every state-changing operation -> the action its successful call records.
AUDITED: Final[dict[tuple[str, str], AuditAction]] = {
    ("POST", "/v1/apikeys"): A.APIKEY_CREATE,
    ("DELETE", "/v1/apikeys/{key_id}"): A.APIKEY_REVOKE,
    ("POST", "/v1/cases"): A.CASE_CREATE,
    ("PATCH", "/v1/cases/{ref}"): A.CASE_PRIORITY,
    ("POST", "/v1/cases/{ref}/transitions"): A.CASE_TRANSITION,
    ("POST", "/v1/cases/{ref}/assign"): A.CASE_ASSIGN,
    ("POST", "/v1/cases/{ref}/take"): A.CASE_TAKE,
    ("POST", "/v1/cases/{ref}/handoff"): A.CASE_HANDOFF,
    ("POST", "/v1/cases/{ref}/forward"): A.CASE_FORWARD,
    ("PATCH", "/v1/cases/{ref}/classification"): A.CASE_CLASSIFY,
    ("POST", "/v1/cases/{ref}/commitments"): A.CASE_COMMITMENT_SET,
    ("POST", "/v1/cases/{ref}/commitments/{commitment_id}/met"): A.CASE_COMMITMENT_MET,
    ("PUT", "/v1/cases/{ref}/etr"): A.CASE_ETR,
    ("POST", "/v1/cases/{ref}/escalate"): A.CASE_ESCALATE,
    ("POST", "/v1/cases/{ref}/reopen"): A.CASE_REOPEN,
    ("POST", "/v1/cases/{ref}/cancel"): A.CASE_CANCEL,
    ("POST", "/v1/cases/{ref}/reply"): A.CASE_REPLY,
    ("POST", "/v1/cases/{ref}/comments"): A.CASE_COMMENT,
    ("POST", "/v1/cases/{ref}/attachments"): A.CASE_ATTACH,
    ("PUT", "/v1/cases/{ref}/rfo"): A.RFO_UPDATE,
    ("POST", "/v1/cases/{ref}/rfo/publish"): A.RFO_PUBLISH,
    ("POST", "/v1/maintenances"): A.MAINTENANCE_CREATE,
    ("PATCH", "/v1/maintenances/{ref}"): A.MAINTENANCE_UPDATE,
    ("POST", "/v1/maintenances/{ref}/cancel"): A.MAINTENANCE_CANCEL,
    ("POST", "/v1/maintenances/{ref}/complete"): A.MAINTENANCE_COMPLETE,
    ("POST", "/v1/webhooks"): A.WEBHOOK_CREATE,
    ("PATCH", "/v1/webhooks/{subscription_id}"): A.WEBHOOK_UPDATE,
    ("DELETE", "/v1/webhooks/{subscription_id}"): A.WEBHOOK_DELETE,
    ("POST", "/v1/webhooks/{subscription_id}/rotate"): A.WEBHOOK_ROTATE,
    ("POST", "/v1/notifications/{delivery_id}/retry"): A.NOTIFICATION_RETRY,
    ("POST", "/v1/mail/held/{mail_id}/release"): A.MAIL_RELEASE,
    ("POST", "/v1/alerts/{alert_id}/ack"): A.ALERT_ACK,
    ("POST", "/v1/replies"): A.REPLY_CREATE,
    ("PATCH", "/v1/replies/{reply_id}"): A.REPLY_UPDATE,
    ("DELETE", "/v1/replies/{reply_id}"): A.REPLY_DELETE,
    ("POST", "/v1/cases/{ref}/replies/{reply_id}/send"): A.CASE_COMMENT,
}

SECRET_TEXT: Final = "SECRET-BODY-4c1e"
# Loopback, like the webhook tests: no name to resolve, nothing is sent here.
HOOK_URL: Final = "http://127.0.0.1:9/hook/T0KEN-in-the-path"


def _operations(app: FastAPI) -> set[tuple[str, str]]:
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    return {(m.upper(), path) for path, item in paths.items() for m in item if m != "get"}


@pytest.fixture
async def app(database: Database, service: CaseService, clock: FakeClock) -> FastAPI:
    """The case API over ``seed`` with every service on the test's clock (``staff`` and
    ``acme`` use it)."""
    await seed(database)
    app = make_app(database, service, clock)
    app.state.webhook_service = WebhookService(
        sessionmaker=database.sessionmaker,
        clock=clock,
        settings=LAB_WEBHOOK_SETTINGS.dispatcher(),
    )
    app.state.delivery_service = DeliveryService(sessionmaker=database.sessionmaker, clock=clock)
    return app


@pytest.fixture
async def admin(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with authed_client(app, role=Role.ADMIN) as client:
        yield client


async def _rows(database: Database, *, after: int = 0) -> list[AuditEvent]:
    async with database.sessionmaker() as session:
        stmt = select(AuditEvent).where(AuditEvent.id > after).order_by(AuditEvent.id)
        return list((await session.execute(stmt)).scalars())


async def _last_id(database: Database) -> int:
    rows = await _rows(database)
    return rows[-1].id if rows else 0


def test_every_state_changing_operation_is_in_the_table(tmp_path: Path) -> None:
    # Building the app opens no connection: any database URL does.
    sessionmaker = make_sessionmaker(make_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"))
    operations = _operations(create_app(sessionmaker=sessionmaker))
    assert sorted(operations - AUDITED.keys()) == [], "add them to AUDITED (and audit them)"
    assert sorted(AUDITED.keys() - operations) == [], "stale entries in AUDITED"


class Scenario:
    """Calls operations in order; each must succeed and add exactly its one row."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.exercised: set[tuple[str, str]] = set()

    async def __call__(
        self,
        client: httpx.AsyncClient,
        method: str,
        template: str,
        body: Any = None,
        *,
        files: dict[str, Any] | None = None,
        **params: Any,
    ) -> tuple[httpx.Response, AuditEvent]:
        before = await _last_id(self.database)
        request_id = f"req-{uuid.uuid4().hex[:12]}"
        response = await client.request(
            method,
            template.format(**params),
            # A multipart upload carries its fields as form data, not JSON.
            json=body if files is None else None,
            data=body if files is not None else None,
            files=files,
            headers={"X-Request-ID": request_id},
        )
        assert response.status_code < 300, (method, template, response.text)
        rows = await _rows(self.database, after=before)
        assert [row.action for row in rows] == [AUDITED[(method, template)].value], template
        row = rows[0]
        assert row.request_id == request_id
        assert row.client == "127.0.0.1"  # httpx's ASGI transport's client address
        assert row.actor_kind == "api_key" and row.actor_key_prefix is not None
        assert SECRET_TEXT not in str(row.details) and "T0KEN" not in str(row.details)
        self.exercised.add((method, template))
        return response, row


async def test_each_operation_records_one_row_with_its_action(
    app: FastAPI,
    admin: httpx.AsyncClient,
    staff: httpx.AsyncClient,
    acme: httpx.AsyncClient,
    database: Database,
    clock: FakeClock,
) -> None:
    step = Scenario(database)
    # API keys
    created, row = await step(admin, "POST", "/v1/apikeys", {"name": "m", "role": "noc"})
    key = created.json()
    assert (row.target_type, row.target_id, row.actor_role) == ("apikey", str(key["id"]), "admin")
    assert row.details == {"prefix": key["prefix"], "role": "noc", "expires_at": None}
    assert key["key"] not in str(row.details)
    await step(admin, "DELETE", "/v1/apikeys/{key_id}", key_id=key["id"])
    # A case, worked through every request staff can make
    draft = {"type": "incident", "customer_id": "cust-1", "ntu_id": "ntu-1", "summary": "down"}
    created, row = await step(staff, "POST", "/v1/cases", draft)
    ref = created.json()["ref"]
    assert (row.target_id, row.customer_id, row.actor_role) == (ref, "cust-1", "engineer")
    _, row = await step(staff, "PATCH", "/v1/cases/{ref}", {"priority": "P1"}, ref=ref)
    assert row.details["priority"] == {"from": "P2", "to": "P1"}
    _, row = await step(staff, "POST", "/v1/cases/{ref}/take", ref=ref)
    assert row.details["assignee"]["to"] == row.actor.split(":", 1)[1]
    await step(staff, "POST", "/v1/cases/{ref}/assign", {"assignee": "bob"}, ref=ref)
    handoff = {"to_level": "L2", "summary": SECRET_TEXT, "details": SECRET_TEXT}
    _, row = await step(staff, "POST", "/v1/cases/{ref}/handoff", handoff, ref=ref)
    assert row.details["escalation_level"] == {"from": "L1", "to": "L2"}
    await sync_organisation(
        database.sessionmaker,
        teams=[TeamRecord(id="l2", name="L2", level="L2", timezone="UTC", members=["carol"])],
        members=[MemberRecord(id="carol", name="C", email="c@x.example", timezone="UTC")],
        rules=[RuleRecord(team="l2")],
    )
    forward = {"team": "l2", "assignee": "carol", "summary": SECRET_TEXT, "details": SECRET_TEXT}
    _, row = await step(staff, "POST", "/v1/cases/{ref}/forward", forward, ref=ref)
    assert row.details["team_id"] == {"from": None, "to": "l2"}
    assert row.details["assignee"] == {"from": None, "to": "carol"}
    promise = {"kind": "next_update", "within_minutes": 30, "note": SECRET_TEXT}
    case, _ = await step(staff, "POST", "/v1/cases/{ref}/commitments", promise, ref=ref)
    commitment_id = case.json()["commitments"][0]["id"]
    met = "/v1/cases/{ref}/commitments/{commitment_id}/met"
    await step(staff, "POST", met, ref=ref, commitment_id=commitment_id)
    etr = {"etr": (START + timedelta(hours=3)).isoformat(), "note": SECRET_TEXT}
    await step(staff, "PUT", "/v1/cases/{ref}/etr", etr, ref=ref)
    fix = {"type": "general_request", "subject": "other", "reason": SECRET_TEXT}
    _, row = await step(staff, "PATCH", "/v1/cases/{ref}/classification", fix, ref=ref)
    assert row.details["type"] == {"from": "incident", "to": "general_request"}
    assert row.details["priority"] == {"from": "P1", "to": "P3"}
    await step(staff, "POST", "/v1/cases/{ref}/escalate", {"reason": SECRET_TEXT}, ref=ref)
    comment = {"body": SECRET_TEXT, "visibility": "internal"}
    _, row = await step(staff, "POST", "/v1/cases/{ref}/comments", comment, ref=ref)
    assert row.details == {"comment_id": 1, "visibility": "internal", "linked_cases": 0}
    upload = {"file": (f"{SECRET_TEXT}.txt", b"log", "text/plain")}
    note = {"visibility": "internal", "comment": SECRET_TEXT}
    _, row = await step(staff, "POST", "/v1/cases/{ref}/attachments", note, files=upload, ref=ref)
    assert row.details == {
        "attachment_id": 1,
        "comment_id": 2,
        "visibility": "internal",
        "size": 3,
        "content_type": "text/plain",
    }
    waiting = {"to": "waiting_customer", "reason": SECRET_TEXT}
    _, row = await step(staff, "POST", "/v1/cases/{ref}/transitions", waiting, ref=ref)
    assert row.details["status"] == {"from": "in_progress", "to": "waiting_customer"}
    _, row = await step(acme, "POST", "/v1/cases/{ref}/reply", ref=ref)
    assert (row.actor_role, row.customer_id) == ("customer", "cust-1")
    solve = {"to": "solved", "resolution_method": "remote", "root_cause_category": "hardware"}
    await step(staff, "POST", "/v1/cases/{ref}/transitions", solve, ref=ref)
    await step(staff, "POST", "/v1/cases/{ref}/reopen", ref=ref)
    rfo = {
        "root_cause_category": "hardware",
        "root_cause": SECRET_TEXT,
        "corrective_actions": SECRET_TEXT,
        "preventive_not_applicable": SECRET_TEXT,
    }
    _, row = await step(staff, "PUT", "/v1/cases/{ref}/rfo", rfo, ref=ref)
    assert row.details["changed"] == sorted(rfo)
    await step(staff, "POST", "/v1/cases/{ref}/rfo/publish", ref=ref)
    await step(staff, "POST", "/v1/cases/{ref}/cancel", {"reason": SECRET_TEXT}, ref=ref)
    # Canned replies: which fields changed, never their text; sending is a comment
    saved = {"title": SECRET_TEXT, "body": f"{SECRET_TEXT} ${{ref}}", "visibility": "internal"}
    created, row = await step(staff, "POST", "/v1/replies", saved)
    reply_id = created.json()["id"]
    assert (row.target_type, row.target_id) == ("reply", str(reply_id))
    assert row.details == {"reply_id": reply_id, "fields": ["*"], "shipped_key": None}
    _, row = await step(staff, "PATCH", "/v1/replies/{reply_id}", {"title": "t"}, reply_id=reply_id)
    assert row.details["fields"] == ["title"]
    send = "/v1/cases/{ref}/replies/{reply_id}/send"
    _, row = await step(staff, "POST", send, ref=ref, reply_id=reply_id)
    assert row.details["reply_id"] == reply_id and row.details["visibility"] == "internal"
    await step(staff, "DELETE", "/v1/replies/{reply_id}", reply_id=reply_id)
    # Maintenance: announce, edit and cancel one; complete an emergency one
    planned = {
        "title": SECRET_TEXT,
        "kind": "planned",
        "starts_at": (START + timedelta(days=15)).isoformat(),
        "ends_at": (START + timedelta(days=15, hours=2)).isoformat(),
        "scope": {"ntus": ["ntu-1"]},
    }
    window, row = await step(staff, "POST", "/v1/maintenances", planned)
    mref = window.json()["ref"]
    assert (row.target_id, row.details["affected_ntus"]) == (mref, 1)
    _, row = await step(staff, "PATCH", "/v1/maintenances/{ref}", {"title": "t"}, ref=mref)
    assert row.details == {"changed": ["title"]}
    await step(staff, "POST", "/v1/maintenances/{ref}/cancel", ref=mref)
    emergency = planned | {
        "kind": "emergency",
        "starts_at": START.isoformat(),
        "ends_at": (START + timedelta(hours=2)).isoformat(),
    }
    window, _ = await step(staff, "POST", "/v1/maintenances", emergency)
    done = {"actual_impact": SECRET_TEXT}
    await step(staff, "POST", "/v1/maintenances/{ref}/complete", done, ref=window.json()["ref"])
    # Webhooks (the URL carries a token: never recorded) and a delivery retry
    hook = {"url": HOOK_URL, "customer_id": "cust-1", "description": SECRET_TEXT}
    created, row = await step(staff, "POST", "/v1/webhooks", hook)
    sub = created.json()["id"]
    assert created.json()["secret"] not in str(row.details)
    update = {"url": HOOK_URL + "2", "description": "x"}
    _, row = await step(
        staff, "PATCH", "/v1/webhooks/{subscription_id}", update, subscription_id=sub
    )
    assert row.details == {"changed": ["description", "url"]}
    await step(staff, "POST", "/v1/webhooks/{subscription_id}/rotate", subscription_id=sub)
    await step(staff, "DELETE", "/v1/webhooks/{subscription_id}", subscription_id=sub)
    delivery_id = await _failed_delivery(database)
    retry = "/v1/notifications/{delivery_id}/retry"
    await step(admin, "POST", retry, delivery_id=delivery_id)
    # A held mail discarded by staff (attach and open_case also record the case's row)
    release = "/v1/mail/held/{mail_id}/release"
    discard = {"action": "discard", "reason": SECRET_TEXT}
    _, row = await step(staff, "POST", release, discard, mail_id=await _held_mail(database))
    assert row.details == {"held_reason": "unknown_sender", "action": "discard"}
    # A staff alert acknowledged by a staff key
    ack = "/v1/alerts/{alert_id}/ack"
    _, row = await step(staff, "POST", ack, alert_id=await _pending_alert(database))
    assert row.details["via"] == "api" and row.target_type == "alert"

    assert sorted(AUDITED.keys() - step.exercised) == [], "the scenario must call every one"


async def _pending_alert(database: Database) -> int:
    async with database.sessionmaker() as session:
        row = StaffAlert(
            event_key="audit-test", case_id=None, kind="new_case", recipients=["alice"],
            step=0, member_id="alice", status="sending", ack_within_seconds=600,
            created_at=START, sent_at=START, next_at=START + timedelta(minutes=10),
        )  # fmt: skip
        session.add(row)
        await session.commit()
        return row.id


async def _held_mail(database: Database) -> int:
    async with database.sessionmaker() as session:
        row = InboundMail(
            mailbox="INBOX", uid=1, message_id="<m@x.example>", dedup_key="k" * 64,
            sha256="0" * 64, received_at=START, sender="who@x.example", subject="hi",
            size=10, status="held", reason="unknown_sender", raw=b"Subject: hi\r\n\r\nhi",
        )  # fmt: skip
        session.add(row)
        await session.commit()
        return row.id


async def _failed_delivery(database: Database) -> int:
    async with database.sessionmaker() as session:
        note = Notification(
            event_id=str(uuid.uuid4()),
            customer_id="cust-1",
            kind="case_opened",
            data={},
            created_at=START,
            expanded_at=START,
        )
        session.add(note)
        await session.flush()
        delivery = NotificationDelivery(
            notification_id=note.id,
            channel="webhook",
            target="1",
            state="failed",
            attempts=3,
            next_attempt_at=START,
            created_at=START,
        )
        session.add(delivery)
        await session.commit()
        return delivery.id


async def test_a_repeat_or_no_op_is_recorded_as_unchanged(
    admin: httpx.AsyncClient, staff: httpx.AsyncClient, database: Database
) -> None:
    key = (await admin.post("/v1/apikeys", json={"name": "m", "role": "noc"})).json()
    for _ in range(2):
        assert (await admin.delete(f"/v1/apikeys/{key['id']}")).status_code == 200
    draft = {"type": "general_request", "customer_id": "cust-1", "summary": "s", "subject": "other"}
    for _ in range(2):
        response = await staff.post("/v1/cases", json=draft, headers={"Idempotency-Key": "k1"})
        assert response.status_code in (200, 201)
    rows = [(r.action, r.outcome) for r in await _rows(database) if r.actor != "system"]
    assert rows == [
        ("apikey.create", "success"),
        ("apikey.revoke", "success"),
        ("apikey.revoke", "unchanged"),
        ("case.create", "success"),
        ("case.create", "unchanged"),
    ]


async def test_a_refused_or_rolled_back_action_leaves_no_row(
    staff: httpx.AsyncClient,
    acme: httpx.AsyncClient,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    draft = {"type": "general_request", "customer_id": "cust-1", "summary": "s", "subject": "other"}
    ref = (await staff.post("/v1/cases", json=draft)).json()["ref"]
    start = await _last_id(database)
    # Refused by the rules (409, 403, 404): nothing recorded.
    refused = await staff.post(f"/v1/cases/{ref}/transitions", json={"to": "rfo_pending"})
    assert refused.status_code == 409
    internal = {"body": "x", "visibility": "internal"}
    assert (await acme.post(f"/v1/cases/{ref}/comments", json=internal)).status_code == 403
    assert (await staff.post("/v1/cases/CS-1999-000001/take")).status_code == 404
    assert await _rows(database, after=start) == []

    # Fails after its row was written, before the commit: the row goes with the change.
    real = audit_repository.add_event

    async def add_then_fail(session: Any, *, event: AuditEvent) -> AuditEvent:
        await real(session, event=event)
        raise RuntimeError("injected fault after the audit row")

    monkeypatch.setattr(audit_repository, "add_event", add_then_fail)
    with pytest.raises(RuntimeError, match="injected"):
        await staff.post(f"/v1/cases/{ref}/take")
    monkeypatch.undo()
    assert await _rows(database, after=start) == []
    assert (await staff.get(f"/v1/cases/{ref}")).json()["assignee"] is None


async def test_the_database_refuses_to_change_or_delete_a_row(
    staff: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    await staff.post(f"/v1/cases/{await _any_case(staff)}/take")
    count = len(await _rows(database))
    statements = [
        "UPDATE audit_events SET actor = 'someone else'",
        "DELETE FROM audit_events",
    ]
    if database.backend == "postgres":  # SQLite has no TRUNCATE
        statements.append("TRUNCATE audit_events")
    for statement in statements:
        async with database.engine.connect() as conn:
            with pytest.raises(DBAPIError, match="append-only"):
                await conn.execute(text(statement))
    # A permit lets through only the rows older than its cutoff: none here.
    async with database.sessionmaker() as session:
        await audit_repository.add_permit(session, cutoff=START - timedelta(days=1))
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(text("DELETE FROM audit_events"))
    assert len(await _rows(database)) == count


async def _any_case(staff: httpx.AsyncClient) -> str:
    draft = {"type": "general_request", "customer_id": "cust-1", "summary": "s", "subject": "other"}
    ref: str = (await staff.post("/v1/cases", json=draft)).json()["ref"]
    return ref


async def test_the_ticker_purges_rows_older_than_the_retention(
    staff: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    old_ref = await _any_case(staff)
    clock.advance(timedelta(days=300))
    new_ref = await _any_case(staff)
    ticker = CaseTicker(
        sessionmaker=database.sessionmaker, clock=clock, audit_retention=timedelta(days=400)
    )
    clock.advance(timedelta(days=100, seconds=1))  # the first is 400 days and 1 s old
    await ticker.run_once()
    kept = {row.target_id for row in await _rows(database) if row.action == "case.create"}
    assert kept == {new_ref}
    assert old_ref not in kept
    await ticker.run_once()  # nothing more to do: a read only
    assert {row.target_id for row in await _rows(database) if row.action == "case.create"} == kept


def test_retention_setting_is_validated() -> None:
    assert AuditSettings().retention == timedelta(days=400)
    assert AuditSettings.model_validate({"retention": "30d"}).retention == timedelta(days=30)
    cases: list[tuple[object, str]] = [
        (400, "has no unit"),
        ("400", "is not a duration"),
        ("12h", "at least 1d"),
        ("0s", "at least 1d"),
    ]
    for value, message in cases:
        with pytest.raises(ValidationError, match=message):
            AuditSettings.model_validate({"retention": value})
    with pytest.raises(ValidationError, match="Extra inputs"):
        AuditSettings.model_validate({"retension": "1d"})


async def test_admins_read_the_log_with_filters_and_pages(
    app: FastAPI,
    admin: httpx.AsyncClient,
    staff: httpx.AsyncClient,
    acme: httpx.AsyncClient,
    database: Database,
    clock: FakeClock,
) -> None:
    first = await _any_case(staff)
    clock.advance(timedelta(hours=1))
    second = await _any_case(staff)
    await staff.post(f"/v1/cases/{second}/take")
    clock.advance(timedelta(hours=1))
    await staff.post(f"/v1/cases/{second}/comments", json={"body": SECRET_TEXT})
    engineer = (await _rows(database))[-1].actor

    async def audit(**params: Any) -> dict[str, Any]:
        response = await admin.get("/v1/audit", params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    everything = await audit(actor=engineer)
    assert [e["action"] for e in everything["data"]] == [
        "case.comment",
        "case.take",
        "case.create",
        "case.create",
    ]
    assert everything["count"] == 4 and everything["next_cursor"] is None
    newest = everything["data"][0]
    assert newest["actor"]["kind"] == "api_key" and newest["actor"]["role"] == "engineer"
    assert SECRET_TEXT not in str(everything)

    picked = await audit(action=["case.take", "case.comment"], target=f"case:{second}")
    assert [e["action"] for e in picked["data"]] == ["case.comment", "case.take"]
    assert (await audit(target=f"case:{first}"))["count"] == 1
    assert (await audit(target="case", actor=engineer))["count"] == 4
    assert (await audit(customer="cust-1", actor=engineer))["count"] == 4
    assert (await audit(customer="cust-2"))["count"] == 0
    window = await audit(
        actor=engineer,
        since=(START + timedelta(minutes=30)).isoformat(),
        before=(START + timedelta(minutes=90)).isoformat(),
    )
    assert [e["action"] for e in window["data"]] == ["case.take", "case.create"]

    seen: list[int] = []
    page = await audit(actor=engineer, limit=3)
    seen += [e["id"] for e in page["data"]]
    page = await audit(actor=engineer, limit=3, cursor=page["next_cursor"])
    seen += [e["id"] for e in page["data"]]
    assert page["next_cursor"] is None
    assert seen == [e["id"] for e in everything["data"]]

    first_page = await audit(actor=engineer, limit=1)
    moved = await admin.get("/v1/audit", params={"limit": 1, "cursor": first_page["next_cursor"]})
    problem(moved, 422, "validation_error")
    bad = await admin.get("/v1/audit", params={"target": "ticket:1"})
    assert problem(bad, 422, "validation_error")["errors"][0]["field"] == "target"
    bad = await admin.get("/v1/audit", params={"action": "case.delete"})
    assert problem(bad, 422, "validation_error")["errors"][0]["field"] == "action.0"
    backwards = {"since": START.isoformat(), "before": START.isoformat()}
    problem(await admin.get("/v1/audit", params=backwards), 422, "validation_error")
    for client in (staff, acme):
        problem(await client.get("/v1/audit"), 403, "forbidden")


async def test_cli_apikey_commands_are_recorded_as_the_os_user(
    app: FastAPI, database: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGNAME", "opsperson")  # getpass.getuser() reads it first
    argv = ["create", "--role", "noc", "--name", "pager", "--database", database.url]
    # The CLI runs its own event loop: in a thread, as at a shell.
    assert await asyncio.to_thread(apikey_main, argv, clock=clock) == 0
    rows = await _rows(database)
    assert [(r.action, r.actor_kind, r.actor, r.client) for r in rows] == [
        ("apikey.create", "cli", "cli:opsperson", "cli")
    ]
    revoke = ["revoke", rows[0].target_id or "", "--database", database.url]
    assert await asyncio.to_thread(apikey_main, revoke, clock=clock) == 0
    assert [r.action for r in await _rows(database, after=rows[0].id)] == ["apikey.revoke"]


async def test_an_action_outside_any_request_is_the_system_s(
    database: Database, clock: FakeClock
) -> None:
    row = await record_action(
        database.sessionmaker,
        AuditAction.REPORT_EXPORT,
        at=clock.now(),
        target_id="availability",
        details={"format": "csv", "rows": 12},
    )
    assert (row.actor_kind, row.actor, row.client, row.target_type) == (
        "system",
        "system",
        None,
        "report",
    )
