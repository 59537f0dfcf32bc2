"""The RFO as PDF: ``GET /v1/cases/{ref}/rfo?format=pdf`` and the rfo_published mail.

Every PDF is read back with poppler: its text must hold what the Markdown shows
(reference, impact figures, timeline, cause and actions) and every page must render.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from caseapi.auth.principal import Role
from caseapi.cases.service import CaseService
from caseapi.core.localtime import format_short, format_time, parse_instant
from caseapi.customers.models import Customer
from caseapi.incidents import IncidentService, NtuStatusUpdate, ntu_down_key
from caseapi.notifications.config import DEFAULT_DISPATCHER, NotificationSettings
from caseapi.notifications.dispatcher import NotificationDispatcher
from caseapi.notifications.render import Envelope
from caseapi.ntus.status import save_statuses
from caseapi.rfo.mail import RfoPdfAttachments
from caseapi.rfo.routes import wants_pdf
from caseapi.rfo.schemas import RfoFormat
from caseapi.rfo.service import RfoService
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import add_customer, authed_client, make_app, problem
from tests.caseapi.conftest import START, Database, incident
from tests.caseapi.notification_fixtures import (
    SmtpSink,
    add_customer_with_email,
    smtp_sink_fixture,  # noqa: F401
)
from tests.caseapi.pdf_tools import TIMEOUT, render_pages, require_poppler

CAUSE = {
    "root_cause_category": "access_circuit",
    "root_cause": "Fibre cut by road works at the Łódź\u2013Süd exchange.",
    "corrective_actions": "Supplier spliced the fibre.",
    "preventive_actions": "Second path ordered.",
}
INTERNAL = "INTERNAL-MARKER supplier ticket 42"
PDF = "application/pdf"


@pytest.fixture(autouse=True)
def _poppler() -> None:
    require_poppler()


@pytest.fixture
async def app(database: Database, service: CaseService, clock: FakeClock) -> FastAPI:
    await add_customer_with_email(database.sessionmaker, "acme", "ops@acme.example")
    async with database.sessionmaker() as session:
        # The customer's documents and mails show times in its zone, with the offset.
        acme = await session.get(Customer, "acme")
        assert acme is not None
        acme.attributes = {**acme.attributes, "timezone": ZONE}
        await session.commit()
    await add_customer(database.sessionmaker, "umbrella")
    return make_app(database, service, clock)


ZONE = "Europe/Rome"


def rome(iso: str) -> str:
    """An RFO's ISO time as its documents show it to acme."""
    instant = parse_instant(iso)
    assert instant is not None
    return format_time(instant, zone=ZONE, language="en")


async def _worked_case(
    app: FastAPI, incidents: IncidentService, clock: FakeClock, database: Database
) -> str:
    """A down case worked by support (internal note, public update), restored, RFO saved."""
    ref = await incidents.open_incident(incident("ntu-1", customer_id="acme"))
    async with authed_client(app, role=Role.ENGINEER) as engineer:
        clock.advance(timedelta(minutes=4))
        assert (await engineer.post(f"/v1/cases/{ref}/take")).is_success
        internal = {"body": INTERNAL, "visibility": "internal"}
        assert (await engineer.post(f"/v1/cases/{ref}/comments", json=internal)).is_success
        clock.advance(timedelta(minutes=3))
        update = {"body": "A fibre cut near the exchange; the supplier is on the way."}
        assert (await engineer.post(f"/v1/cases/{ref}/comments", json=update)).is_success
        clock.advance(timedelta(minutes=43))
        await incidents.restore_incident(dedup_key=ntu_down_key("ntu-1"), restored_at=clock.now())
        async with database.sessionmaker() as session:
            await save_statuses(
                session,
                [
                    NtuStatusUpdate(
                        ntu_id="ntu-1",
                        status="up",
                        since=clock.now(),
                        last_observation_at=clock.now(),
                        rtt_avg=0.0123,
                        loss=0.0,
                        jitter=0.0008,
                    )
                ],
            )
            await session.commit()
        assert (await engineer.put(f"/v1/cases/{ref}/rfo", json=CAUSE)).is_success
    return ref


async def _publish(app: FastAPI, ref: str) -> None:
    async with authed_client(app, role=Role.ENGINEER) as engineer:
        published = await engineer.post(f"/v1/cases/{ref}/rfo/publish")
        assert published.status_code == 200, published.text


def _pdf(response: httpx.Response) -> bytes:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == PDF
    assert response.content.startswith(b"%PDF-")
    return response.content


def pdf_text(data: bytes, tmp_path: Path) -> str:
    """The PDF's text in content-stream order (``pdftotext -raw``).

    poppler's default reading-order mode drops the narrow spaces inside table cells
    (``1 h`` comes out as ``1h``); the impact table must read as the Markdown does.
    """
    source = tmp_path / "raw-input.pdf"
    source.write_bytes(data)
    args = ["pdftotext", "-enc", "UTF-8", "-raw", str(source), "-"]
    done = subprocess.run(args, capture_output=True, check=True, timeout=TIMEOUT)
    return done.stdout.decode("utf-8")


def _flat(text: str) -> str:
    """Text with runs of whitespace as one space (table cells wrap)."""
    return re.sub(r"\s+", " ", text)


async def test_pdf_tells_what_the_markdown_tells(
    app: FastAPI,
    incidents: IncidentService,
    clock: FakeClock,
    database: Database,
    tmp_path: Path,
) -> None:
    ref = await _worked_case(app, incidents, clock, database)
    await _publish(app, ref)
    async with authed_client(app, role=Role.CUSTOMER, customer_id="acme") as acme:
        response = await acme.get(f"/v1/cases/{ref}/rfo", params={"format": "pdf"})
        data = _pdf(response)
        rfo = (await acme.get(f"/v1/cases/{ref}/rfo")).json()
        markdown = (await acme.get(f"/v1/cases/{ref}/rfo?format=md")).text
        by_accept = await acme.get(f"/v1/cases/{ref}/rfo", headers={"Accept": PDF})
    assert response.headers["content-disposition"] == f'attachment; filename="RFO-{ref}-v1.pdf"'
    assert _pdf(by_accept) == data  # the same document, byte for byte
    text = pdf_text(data, tmp_path)
    flat = _flat(text)
    assert f"Reason for outage: {ref}" in flat
    # Times in the customer's zone, with the offset; the JSON keeps UTC.
    assert rfo["published_at"].endswith("Z") or rfo["published_at"].endswith("+00:00")
    assert f"Version 1 (published {rome(rfo['published_at'])})" in flat
    assert "(UTC+01:00, Europe/Rome)" in flat and f"Time zone {ZONE}" in flat
    assert "Acme" in flat  # the customer's name
    # Every row of the Markdown's impact table, with the same figures.
    rows = re.findall(r"^\| ([^|]+?) \| ([^|]+?) \|$", markdown, re.M)
    impact = [(label, value) for label, value in rows if label.strip()]
    assert ("Duration", "1 h") in impact
    assert ("Impact start", rome(rfo["facts"]["impact_start"])) in impact
    assert f"_Times are in {ZONE}, each with its offset from UTC._" in markdown
    assert len(impact) == 11
    for label, value in impact:
        assert f"{label} {value}" in flat, (label, value)
    # Every timeline entry, in order.
    cursor = flat.index(f"Time ({ZONE}) What happened")
    for entry in rfo["facts"]["timeline"]:
        at = parse_instant(entry["at"])
        assert at is not None
        row = f"{format_short(at, zone=ZONE)} {entry['description']}"
        assert f"- {format_short(at, zone=ZONE)}: {entry['description']}" in markdown
        cursor = flat.index(row, cursor) + len(row)  # ValueError: missing or out of order
    assert len(rfo["facts"]["timeline"]) >= 8
    for fragment in (CAUSE["root_cause"], CAUSE["corrective_actions"], CAUSE["preventive_actions"]):
        assert fragment in flat, fragment
    assert "Category access_circuit" in flat
    # Probe figures: the latest burst at publication, in ms and %.
    assert "Round-trip time (average) 12.3 ms" in flat
    assert "Jitter 0.8 ms" in flat and "Packet loss 0 %" in flat
    assert rfo["facts"]["probe"]["rtt_avg_ms"] == 12.3
    # Unicode round-trips; internal notes never reach the customer's document.
    assert "Łódź\u2013Süd" in text
    assert INTERNAL not in text and "INTERNAL-MARKER" not in data.decode("latin-1")
    assert "engineer" not in flat.lower().replace("taken in hand by an engineer", "")
    pages = render_pages(data, tmp_path)
    assert len(pages) >= 1


async def test_tenancy_and_drafts(
    app: FastAPI,
    incidents: IncidentService,
    clock: FakeClock,
    database: Database,
    tmp_path: Path,
) -> None:
    ref = await _worked_case(app, incidents, clock, database)
    async with (
        authed_client(app, role=Role.ENGINEER) as engineer,
        authed_client(app, role=Role.CUSTOMER, customer_id="acme") as acme,
        authed_client(app, role=Role.CUSTOMER, customer_id="umbrella") as umbrella,
    ):
        # Nothing published yet: staff are told why, customers see nothing.
        refused = problem(
            await engineer.get(f"/v1/cases/{ref}/rfo?format=pdf"), 409, "rfo_not_published"
        )
        assert "published" in refused["detail"] and "format=md" in refused["detail"]
        documented = app.openapi()["paths"]["/v1/cases/{ref}/rfo"]["get"]["responses"]
        assert "rfo_not_published" in str(documented["409"])  # schemathesis checks this too
        problem(await acme.get(f"/v1/cases/{ref}/rfo?format=pdf"), 404, "rfo_not_found")
        await _publish(app, ref)
        clock.advance(timedelta(hours=1))
        fix = {"root_cause": "Fibre cut by a digger."}
        assert (await engineer.put(f"/v1/cases/{ref}/rfo", json=fix)).is_success
        # Version 2 is a draft: staff get the newest published one, or 409 for v2.
        latest = await engineer.get(f"/v1/cases/{ref}/rfo?format=pdf")
        assert 'filename="RFO-' + ref + '-v1.pdf"' in latest.headers["content-disposition"]
        assert "Fibre cut by road works" in pdf_text(_pdf(latest), tmp_path)
        problem(
            await engineer.get(f"/v1/cases/{ref}/rfo?format=pdf&version=2"),
            409,
            "rfo_not_published",
        )
        problem(
            await engineer.get(f"/v1/cases/{ref}/rfo?format=pdf&version=7"), 404, "rfo_not_found"
        )
        problem(
            await engineer.get("/v1/cases/CS-1999-000001/rfo?format=pdf"), 404, "case_not_found"
        )
        # Another customer's case, or a missing one: the same 404 as elsewhere.
        problem(await umbrella.get(f"/v1/cases/{ref}/rfo?format=pdf"), 404, "rfo_not_found")
        problem(await umbrella.get(f"/v1/cases/{ref}/rfo?format=md"), 404, "rfo_not_found")
        problem(await umbrella.get("/v1/cases/CS-1999-000001/rfo?format=pdf"), 404, "rfo_not_found")
        # The customer reads only the newest published version.
        assert (await acme.get(f"/v1/cases/{ref}/rfo?format=pdf&version=1")).status_code == 200
        problem(await acme.get(f"/v1/cases/{ref}/rfo?format=pdf&version=2"), 404, "rfo_not_found")
        await _publish(app, ref)
        v2 = _pdf(await acme.get(f"/v1/cases/{ref}/rfo?format=pdf"))
        assert "Fibre cut by a digger." in pdf_text(v2, tmp_path)
        problem(await acme.get(f"/v1/cases/{ref}/rfo?format=pdf&version=1"), 404, "rfo_not_found")
        # Staff still read version 1, unchanged.
        v1 = _pdf(await engineer.get(f"/v1/cases/{ref}/rfo?format=pdf&version=1"))
        assert "Fibre cut by road works" in pdf_text(v1, tmp_path)
        assert v1 == _pdf(latest)
        # format is a declared parameter with its values; others are refused.
        bad = problem(await acme.get(f"/v1/cases/{ref}/rfo?format=docx"), 422, "validation_error")
        assert "format" in str(bad)


def test_pdf_is_chosen_by_format_or_by_accept() -> None:
    assert wants_pdf(RfoFormat.PDF, None)
    assert not wants_pdf(RfoFormat.JSON, PDF)  # an explicit format wins
    assert wants_pdf(None, "application/pdf;q=0.9")
    assert not wants_pdf(None, "application/json, application/pdf")
    assert not wants_pdf(None, None)
    assert not wants_pdf(None, "*/*")


async def test_upstream_incident_ref_is_shown(
    app: FastAPI, incidents: IncidentService, clock: FakeClock, tmp_path: Path
) -> None:
    from tests.caseapi.conftest import upstream

    parent = await incidents.open_upstream_incident(upstream(("ntu-7", "acme")))
    async with authed_client(app, role=Role.ENGINEER) as engineer:
        cases = (await engineer.get("/v1/cases", params={"customer": "acme"})).json()["data"]
        child = next(case["ref"] for case in cases if case["ref"] != parent)
        clock.advance(timedelta(minutes=30))
        assert (await engineer.put(f"/v1/cases/{parent}/rfo", json=CAUSE)).is_success
        assert (await engineer.post(f"/v1/cases/{parent}/rfo/publish")).is_success
    async with authed_client(app, role=Role.CUSTOMER, customer_id="acme") as acme:
        text = _flat(pdf_text(_pdf(await acme.get(f"/v1/cases/{child}/rfo?format=pdf")), tmp_path))
    assert f"Upstream incident {parent}" in text
    assert f"part of the upstream incident {parent}" in text


async def _mail_settings(smtp: SmtpSink, **notifications: Any) -> Any:
    base = NotificationSettings(**notifications).dispatcher()
    return replace(
        base,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        send_timeout=10.0,
        claim_timeout=timedelta(seconds=30),
    )


async def test_rfo_published_mail_carries_the_pdf(
    app: FastAPI,
    incidents: IncidentService,
    clock: FakeClock,
    database: Database,
    smtp_sink: SmtpSink,
    tmp_path: Path,
) -> None:
    ref = await _worked_case(app, incidents, clock, database)
    await _publish(app, ref)
    rfo_service = RfoService(sessionmaker=database.sessionmaker, clock=clock)
    assert NotificationSettings().attach_rfo_pdf is True  # the default
    sender = NotificationDispatcher(
        sessionmaker=database.sessionmaker,
        settings=await _mail_settings(smtp_sink),
        clock=clock,
        rng=lambda: 1.0,
        attachments=(RfoPdfAttachments(service=rfo_service),),
    )
    await sender.run_once(clock.now())
    mails = {mail["X-NMS-Event"]: mail for mail in smtp_sink.messages}
    assert {"case_opened", "rfo_published"} <= set(mails)
    mail = mails["rfo_published"]
    files = [part for part in mail.walk() if part.get_filename()]
    assert [part.get_filename() for part in files] == [f"RFO-{ref}-v1.pdf"]
    assert files[0].get_content_type() == PDF
    attached = bytes(files[0].get_payload(decode=True))
    # The same document the API serves.
    async with authed_client(app, role=Role.CUSTOMER, customer_id="acme") as acme:
        assert attached == _pdf(await acme.get(f"/v1/cases/{ref}/rfo?format=pdf"))
    assert CAUSE["root_cause"] in _flat(pdf_text(attached, tmp_path))
    body = next(part for part in mail.walk() if part.get_content_type() == "text/plain")
    text = bytes(body.get_payload(decode=True)).decode()
    assert f"GET /v1/cases/{ref}/rfo (add ?format=pdf for the PDF)" in text
    # ops@acme.example is no contact: it reads the customer's zone.
    assert "(UTC+01:00, Europe/Rome)" in text and "(UTC)" not in text
    render_pages(attached, tmp_path)
    # Other mails carry no file.
    assert not [part for part in mails["case_opened"].walk() if part.get_filename()]


async def test_attachment_off_wrong_customer_and_broken_source(
    app: FastAPI,
    incidents: IncidentService,
    clock: FakeClock,
    database: Database,
    smtp_sink: SmtpSink,
) -> None:
    ref = await _worked_case(app, incidents, clock, database)
    await _publish(app, ref)
    source = RfoPdfAttachments(service=RfoService(sessionmaker=database.sessionmaker, clock=clock))
    envelope = Envelope(
        event_id="e1",
        kind="rfo_published",
        customer_id="acme",
        customer_name="Acme",
        case_ref=ref,
        created_at=START,
        data={"version": 1},
    )
    assert len(await source(envelope)) == 1
    # Never another customer's RFO, never an unpublished or unknown version.
    assert await source(replace(envelope, customer_id="umbrella")) == []
    assert await source(replace(envelope, data={"version": 2})) == []
    assert await source(replace(envelope, data={})) == []
    assert await source(replace(envelope, kind="case_opened")) == []

    async def broken(envelope: Envelope) -> list[Any]:
        raise RuntimeError("renderer exploded")

    # Off by setting: the composition root wires no source (caseapi.app.CaseWorkers).
    from caseapi.app import CaseWorkers

    off = NotificationSettings(attach_rfo_pdf=False, smtp_host="127.0.0.1")
    workers = CaseWorkers(sessionmaker=database.sessionmaker, clock=clock, notifications=off)
    assert workers.dispatcher is not None and workers.dispatcher._email is not None
    assert workers.dispatcher._email._attachments == ()
    on = CaseWorkers(
        sessionmaker=database.sessionmaker,
        clock=clock,
        notifications=NotificationSettings(smtp_host="127.0.0.1"),
    )
    assert on.dispatcher is not None and on.dispatcher._email is not None
    assert len(on.dispatcher._email._attachments) == 1
    # A broken source costs the file, not the message.
    sender = NotificationDispatcher(
        sessionmaker=database.sessionmaker,
        settings=replace(
            DEFAULT_DISPATCHER,
            smtp_host="127.0.0.1",
            smtp_port=smtp_sink.port,
            send_timeout=10.0,
            claim_timeout=timedelta(seconds=30),
        ),
        clock=clock,
        rng=lambda: 1.0,
        attachments=(broken,),
    )
    await sender.run_once(clock.now())
    mails = {mail["X-NMS-Event"]: mail for mail in smtp_sink.messages}
    assert "rfo_published" in mails
    assert not [part for part in mails["rfo_published"].walk() if part.get_filename()]
