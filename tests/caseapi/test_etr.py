"""The estimated time of restoration (ETR): the lifecycle rule, the API, upstream
incidents and what the customer is told (timeline, case, mail and webhook)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from caseapi.api.app import create_app
from caseapi.auth.principal import Role
from caseapi.cases.enums import (
    WORKING_STATUSES,
    CaseEventKind,
    CaseStatus,
    CaseType,
    CommitmentKind,
)
from caseapi.cases.errors import EtrNotAllowedError
from caseapi.cases.lifecycle import step
from caseapi.cases.models import Case
from caseapi.cases.service import CaseService
from caseapi.cases.snapshot import Commitment, SetEtr
from caseapi.core.localtime import format_time
from caseapi.incidents import IncidentService
from caseapi.notifications.config import DEFAULT_DISPATCHER
from caseapi.notifications.dispatcher import NotificationDispatcher
from caseapi.notifications.models import Notification
from caseapi.notifications.render import Envelope, public_payload, render_email
from caseapi.notifications.service import WebhookService
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import authed_client
from tests.caseapi.conftest import START, Database, incident, upstream
from tests.caseapi.lifecycle_fixtures import POLICY, snapshot
from tests.caseapi.notification_fixtures import (
    LAB_WEBHOOKS,
    SmtpSink,
    WebhookSink,
    add_customer_with_email,
    smtp_sink_fixture,  # noqa: F401
    webhook_sink_fixture,  # noqa: F401
)

ETR = START + timedelta(hours=3)
LATER = START + timedelta(hours=5)
NOW = START + timedelta(minutes=10)


def iso(value: datetime) -> str:
    """How timeline data and notifications write a time."""
    return value.isoformat()


def api(value: datetime) -> str:
    """How the API's case and timeline fields write a UTC time."""
    return value.isoformat().replace("+00:00", "Z")


# -- the pure rule -----------------------------------------------------------------


def test_setting_the_etr_is_an_update_meeting_pending_next_update_commitments() -> None:
    promises = (
        Commitment(CommitmentKind.NEXT_UPDATE, NOW + timedelta(minutes=20), id=1),
        Commitment(CommitmentKind.ENGINEER_ON_SITE, NOW + timedelta(hours=2), id=2),
        # Overdue but not yet ticked: a late update does not keep it.
        Commitment(CommitmentKind.NEXT_UPDATE, NOW - timedelta(minutes=1), id=3),
    )
    case = snapshot(CaseStatus.IN_PROGRESS, commitments=promises)
    out = step(case, SetEtr(etr=ETR, actor="engineer:alice", note="fibre"), NOW, POLICY)
    assert out.snapshot.etr == ETR
    assert [(e.kind, dict(e.data)) for e in out.entries] == [
        (CaseEventKind.ETR_SET, {"etr": iso(ETR), "previous": None, "note": "fibre"}),
        (CaseEventKind.FIRST_RESPONSE, {}),
        (
            CaseEventKind.COMMITMENT_MET,
            {"kind": "next_update", "due_at": iso(NOW + timedelta(minutes=20)), "late": False},
        ),
    ]
    assert out.snapshot.first_responded_at == NOW
    assert [c.met_at for c in out.snapshot.commitments] == [NOW, None, None]

    # Changing it again: the previous value is logged, the first response stays.
    again = step(out.snapshot, SetEtr(etr=None, actor="engineer:bob"), NOW, POLICY)
    assert again.snapshot.etr is None
    assert [(e.kind, dict(e.data)) for e in again.entries] == [
        (CaseEventKind.ETR_SET, {"etr": None, "previous": iso(ETR), "note": ""}),
    ]


@pytest.mark.parametrize("status", list(CaseStatus))
@pytest.mark.parametrize("type", list(CaseType))
def test_every_status_and_type_either_takes_the_etr_or_refuses_it(
    status: CaseStatus, type: CaseType
) -> None:
    case = snapshot(status, type=type)
    event = SetEtr(etr=ETR, actor="e")
    if type is CaseType.INCIDENT and status in WORKING_STATUSES:
        out = step(case, event, NOW, POLICY)
        assert (out.snapshot.etr, out.snapshot.status) == (ETR, status)
        return
    reason = "general request" if type is CaseType.GENERAL_REQUEST else "restored service"
    with pytest.raises(EtrNotAllowedError, match=reason):
        step(case, event, NOW, POLICY)


def test_an_etr_is_in_the_future() -> None:
    with pytest.raises(ValueError, match="must be in the future"):
        step(snapshot(), SetEtr(etr=NOW, actor="e"), NOW, POLICY)


# -- the API -------------------------------------------------------------------------


def make_app(database: Database, service: CaseService, clock: FakeClock) -> FastAPI:
    app = create_app(sessionmaker=database.sessionmaker, case_service=service, clock=clock)
    app.state.webhook_service = WebhookService(
        sessionmaker=database.sessionmaker, clock=clock, settings=DISPATCH
    )
    return app


DISPATCH = replace(
    DEFAULT_DISPATCHER,
    webhook_policy=LAB_WEBHOOKS,
    send_timeout=15.0,
    claim_timeout=timedelta(seconds=30),
    backoff_base=timedelta(seconds=10),
    backoff_cap=timedelta(seconds=60),
)


async def put_etr(
    client: httpx.AsyncClient, ref: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    return await client.put(f"/v1/cases/{ref}/etr", json=body, headers=headers)


def etr_entries(timeline: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["data"] for e in timeline["data"] if e["kind"] == "etr_set"]


async def test_staff_set_change_and_clear_it_and_the_customer_sees_each_step(
    incidents: IncidentService,
    clock: FakeClock,
    staff: httpx.AsyncClient,
    acme: httpx.AsyncClient,
) -> None:
    ref = await incidents.open_incident(incident("ntu-1"))
    assert (await acme.get(f"/v1/cases/{ref}")).json()["etr"] is None

    clock.advance(timedelta(minutes=5))
    first = await put_etr(staff, ref, {"etr": iso(ETR), "note": "Fibre cut, splicing."})
    assert first.status_code == 200, first.text
    assert first.json()["etr"] == api(ETR)
    assert (await acme.get(f"/v1/cases/{ref}")).json()["etr"] == api(ETR)

    clock.advance(timedelta(minutes=5))
    # Given in another zone: stored and shown in UTC.
    changed = await put_etr(staff, ref, {"etr": "2026-03-01T18:00:00+01:00"})
    assert changed.json()["etr"] == api(LATER)
    assert (await acme.get(f"/v1/cases/{ref}")).json()["etr"] == api(LATER)

    clock.advance(timedelta(minutes=5))
    cleared = await put_etr(
        staff, ref, {"etr": None, "note": "No estimate until the supplier reports back."}
    )
    assert cleared.status_code == 200, cleared.text
    assert (await acme.get(f"/v1/cases/{ref}")).json()["etr"] is None

    expected = [
        {"etr": iso(ETR), "previous": None, "note": "Fibre cut, splicing."},
        {"etr": iso(LATER), "previous": iso(ETR), "note": ""},
        {
            "etr": None,
            "previous": iso(LATER),
            "note": "No estimate until the supplier reports back.",
        },
    ]
    # The customer's timeline has every change, in order, with what it replaced.
    for client in (acme, staff):
        timeline = (await client.get(f"/v1/cases/{ref}/timeline")).json()
        assert etr_entries(timeline) == expected
        times = [e["at"] for e in timeline["data"] if e["kind"] == "etr_set"]
        assert times == [api(START + timedelta(minutes=m)) for m in (5, 10, 15)]
        actors = {e["actor"] for e in timeline["data"] if e["kind"] == "etr_set"}
        assert len(actors) == 1 and actors.pop().startswith("engineer:")


async def test_an_etr_update_meets_the_open_next_update_and_is_the_first_response(
    incidents: IncidentService,
    clock: FakeClock,
    staff: httpx.AsyncClient,
) -> None:
    ref = await incidents.open_incident(incident("ntu-1"))
    promised = await staff.post(
        f"/v1/cases/{ref}/commitments", json={"kind": "next_update", "within_minutes": 30}
    )
    assert promised.status_code == 200, promised.text
    [commitment] = promised.json()["commitments"]
    assert promised.json()["first_responded_at"] is None  # a promise says nothing yet

    clock.advance(timedelta(minutes=20))
    updated = (await put_etr(staff, ref, {"etr": iso(ETR)})).json()
    assert updated["first_responded_at"] == api(START + timedelta(minutes=20))
    [met] = updated["commitments"]
    assert met["id"] == commitment["id"]
    assert met["met_at"] == api(START + timedelta(minutes=20)) and met["missed_at"] is None
    kinds = [e["kind"] for e in (await staff.get(f"/v1/cases/{ref}/timeline")).json()["data"]]
    assert kinds[-3:] == ["etr_set", "first_response", "commitment_met"]


async def case_by_customer(database: Database) -> dict[str | None, Case]:
    async with database.sessionmaker() as session:
        cases = (await session.scalars(select(Case).order_by(Case.id))).all()
    prefix = "node:pop1:down:customer:"
    return {c.customer_id: c for c in cases if (c.dedup_key or "").startswith(prefix)}


async def test_an_upstream_etr_reaches_each_linked_customer_case_being_worked(
    database: Database,
    incidents: IncidentService,
    clock: FakeClock,
    staff: httpx.AsyncClient,
    acme: httpx.AsyncClient,
    other: httpx.AsyncClient,
) -> None:
    parent = await incidents.open_upstream_incident(
        upstream(("a1", "cust-1"), ("b1", "cust-2"), ("c1", "cust-3"))
    )
    # An NTU's own case linked to the incident is not one of its customer cases.
    own = await incidents.open_incident(replace(incident("a9"), parent_key="node:pop1:down"))
    linked = await case_by_customer(database)
    mine, theirs, solved = linked["cust-1"].ref, linked["cust-2"].ref, linked["cust-3"].ref
    done = {"to": "solved", "resolution_method": "remote", "root_cause_category": "hardware"}
    assert (await staff.post(f"/v1/cases/{solved}/transitions", json=done)).status_code == 200

    clock.advance(timedelta(minutes=5))
    note = "Supplier on site at the PoP."
    response = await put_etr(staff, parent, {"etr": iso(ETR), "note": note})
    assert response.status_code == 200, response.text
    assert response.json()["etr"] == api(ETR)

    for ref, client in ((mine, acme), (theirs, other)):
        case = (await client.get(f"/v1/cases/{ref}")).json()
        assert case["etr"] == api(ETR) and case["parent"] == parent
        assert case["first_responded_at"] == api(START + timedelta(minutes=5))
        timeline = (await client.get(f"/v1/cases/{ref}/timeline")).json()
        assert etr_entries(timeline) == [
            {"etr": iso(ETR), "previous": None, "note": note, "from_parent": parent}
        ]
    for ref in (solved, own):
        assert (await staff.get(f"/v1/cases/{ref}")).json()["etr"] is None
    # Neither customer sees the other's case, nor the internal incident.
    for client, foreign in ((acme, theirs), (other, mine)):
        assert (await client.get(f"/v1/cases/{foreign}")).status_code == 404
        assert (await client.get(f"/v1/cases/{parent}")).status_code == 404
        listed = (await client.get("/v1/cases")).json()["data"]
        assert [c["ref"] for c in listed] != [] and foreign not in {c["ref"] for c in listed}

    # One notification per customer case reached; the internal incident tells nobody.
    async with database.sessionmaker() as session:
        told = await session.execute(
            select(Notification.customer_id, Notification.case_ref, Notification.data).where(
                Notification.kind == "etr_updated"
            )
        )
        rows = sorted(told.all(), key=lambda row: row[0])
    assert [(customer, ref) for customer, ref, _ in rows] == [
        ("cust-1", mine),
        ("cust-2", theirs),
    ]
    others_of = {"cust-1": (theirs, "cust-2", "b1"), "cust-2": (mine, "cust-1", "a1")}
    for customer, _, data in rows:
        assert data["etr"] == iso(ETR) and data["note"] == note
        for secret in others_of[customer]:
            assert secret not in json.dumps(data), secret


async def test_refusals_name_the_problem_and_change_nothing(
    app: FastAPI,
    service: CaseService,
    incidents: IncidentService,
    clock: FakeClock,
    staff: httpx.AsyncClient,
    acme: httpx.AsyncClient,
    other: httpx.AsyncClient,
) -> None:
    ref = await incidents.open_incident(incident("ntu-1"))
    request = await acme.post(
        "/v1/cases", json={"type": "general_request", "summary": "a report", "subject": "other"}
    )
    general = request.json()["ref"]
    refused = await put_etr(staff, general, {"etr": iso(ETR)})
    assert refused.status_code == 409
    assert refused.json()["code"] == "etr_not_allowed"
    assert "general request" in refused.json()["detail"]

    async def problem(body: dict[str, Any], status: int = 422) -> dict[str, Any]:
        response = await put_etr(staff, ref, body)
        assert response.status_code == status, response.text
        result: dict[str, Any] = response.json()
        return result

    past = await problem({"etr": iso(START - timedelta(minutes=1))})
    assert past["code"] == "validation_error"
    assert past["errors"][0]["field"] == "etr"
    assert "must be in the future" in past["errors"][0]["message"]
    assert iso(START) in past["errors"][0]["message"]  # the injected clock's now
    assert "must be in the future" in (await problem({"etr": iso(START)}))["detail"]
    naive = await problem({"etr": "2026-03-01T15:00:00"})
    assert naive["errors"][0]["field"] == "etr"
    assert "timezone" in naive["errors"][0]["message"]
    unknown = await problem({"etr": iso(ETR), "eta": iso(ETR)})
    assert unknown["errors"] == [{"field": "eta", "message": "Extra inputs are not permitted"}]
    missing = await problem({"note": "x"})
    assert missing["errors"] == [{"field": "etr", "message": "Field required"}]
    huge = await problem({"etr": "9999-12-31T23:00:00-14:00"})
    assert "out of range" in huge["errors"][0]["message"]
    stale = await put_etr(staff, ref, {"etr": iso(ETR)}, **{"If-Match": '"v0"'})
    assert stale.status_code == 412

    # Customers: staff-only like every other work route, on any case (no existence
    # leak); another customer's case is still a 404 to read.
    for client in (acme, other):
        denied = await put_etr(client, ref, {"etr": iso(ETR)})
        assert denied.status_code == 403 and denied.json()["code"] == "forbidden"
    assert (await other.get(f"/v1/cases/{ref}")).status_code == 404
    assert (await service.get_case(ref)).etr is None
    assert (await service.get_case(ref)).version == 1

    # Restored: a solved case has no ETR to give.
    await incidents.restore_incident(dedup_key="ntu:ntu-1:down", restored_at=clock.now())
    after = await put_etr(staff, ref, {"etr": iso(ETR)})
    assert after.status_code == 409 and after.json()["code"] == "etr_not_allowed"
    assert "solved" in after.json()["detail"]
    assert (await put_etr(staff, "CS-1999-000001", {"etr": iso(ETR)})).status_code == 404


# -- what the customer is sent ----------------------------------------------------------


async def test_mail_and_webhook_carry_the_current_etr(
    database: Database,
    service: CaseService,
    incidents: IncidentService,
    clock: FakeClock,
    smtp_sink: SmtpSink,
    webhook_sink: WebhookSink,
) -> None:
    await add_customer_with_email(database.sessionmaker, "cust-1", "ops@cust1.example")
    app = make_app(database, service, clock)
    settings = replace(
        DISPATCH, smtp_host="127.0.0.1", smtp_port=smtp_sink.port, smtp_from="noc@nms.example"
    )
    sender = NotificationDispatcher(
        sessionmaker=database.sessionmaker, settings=settings, clock=clock, rng=lambda: 1.0
    )
    async with (
        authed_client(app, role=Role.CUSTOMER, customer_id="cust-1") as customer,
        authed_client(app, role=Role.ENGINEER) as staff,
    ):
        hook = await customer.post("/v1/webhooks", json={"url": webhook_sink.url})
        assert hook.status_code == 201, hook.text
        ref = await incidents.open_incident(incident("ntu-1"))
        clock.advance(timedelta(minutes=5))
        put = await put_etr(staff, ref, {"etr": "2026-03-01T16:00:00+01:00", "note": "Splicing."})
        assert put.status_code == 200, put.text
        clock.advance(timedelta(minutes=5))
        comment = await staff.post(f"/v1/cases/{ref}/comments", json={"body": "Nearly done."})
        assert comment.status_code == 201, comment.text
    await sender.run_once(clock.now())

    payloads = [json.loads(request.body) for request in webhook_sink.requests]
    assert [p["type"] for p in payloads] == ["case_opened", "etr_updated", "public_update"]
    opened, updated, public = (p["data"] for p in payloads)
    assert "etr" in opened and opened["etr"] is None
    assert updated["etr"] == iso(ETR) and updated["note"] == "Splicing."
    assert updated["ref"] == ref and "previous_etr" not in updated
    assert public["etr"] == iso(ETR)  # every later update carries the current one

    texts = {}
    for mail in smtp_sink.messages:
        parts = {part.get_content_type(): part for part in mail.walk()}
        text = bytes(parts["text/plain"].get_payload(decode=True)).decode()
        html = bytes(parts["text/html"].get_payload(decode=True)).decode()
        texts[str(mail["Subject"])] = (text, html)
    assert sorted(texts) == sorted(
        [
            f"[{ref}] Case opened - status: new",
            f"[{ref}] Estimated time of restoration - status: new",
            f"[{ref}] Update - status: new",
        ]
    )
    opened_text, _ = texts[f"[{ref}] Case opened - status: new"]
    assert "Estimated time of restoration: not set" in opened_text
    etr_text, etr_html = texts[f"[{ref}] Estimated time of restoration - status: new"]
    shown = format_time(ETR, zone=None, language="en")  # no zone set: UTC, said so
    assert f"Estimated time of restoration: {shown}" in etr_text and shown.endswith("(UTC)")
    assert f"{shown} (previously not set)" in etr_text and "Splicing." in etr_text
    assert shown in etr_html and "Splicing." in etr_html
    update_text, _ = texts[f"[{ref}] Update - status: new"]
    assert f"Estimated time of restoration: {shown}" in update_text


def test_a_cleared_etr_is_null_in_the_payload_and_not_set_in_the_mail() -> None:
    envelope = Envelope(
        event_id="0b5e3a8e-0000-4000-8000-000000000002",
        kind="etr_updated",
        customer_id="cust-1",
        customer_name="Cust One",
        case_ref="CS-2026-000042",
        created_at=START,
        data={
            "ref": "CS-2026-000042",
            "status": "in_progress",
            "etr": None,
            "previous_etr": datetime(2026, 3, 1, 16, tzinfo=UTC).isoformat(),
            "note": "",
            "at": START,
        },
    )
    payload = public_payload(envelope)["data"]
    assert payload["etr"] is None and payload["previous_etr"] == "2026-03-01T16:00:00+00:00"
    text = render_email(envelope).text
    assert "Estimated time of restoration: not set" in text
    assert "not set (previously 1 March 2026, 16:00 (UTC))." in text
