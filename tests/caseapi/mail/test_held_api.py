"""``/v1/mail/held``: staff list, read and release held mail (both backends)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from caseapi.audit.models import AuditEvent
from caseapi.cases.models import Case
from caseapi.comments.models import Comment
from caseapi.mail.ingest import MailIngestService
from nms.clock import FakeClock
from tests.caseapi.conftest import Database
from tests.caseapi.mail.ingest_fixtures import (
    ANN,
    BOB,
    SETTINGS,
    STRANGER,
    inbound,
    mail,
    make_ingest,
    outbox,
    seed_mail,
)


@pytest.fixture
async def ingest(app: FastAPI, database: Database, clock: FakeClock) -> MailIngestService:
    await seed_mail(database)
    return make_ingest(database, clock)


async def test_list_filters_and_pages_staff_only(
    ingest: MailIngestService,
    staff: httpx.AsyncClient,
    acme: httpx.AsyncClient,
    database: Database,
) -> None:
    await ingest.ingest(mail(ANN), mailbox="INBOX", uid=None)  # ingested: not listed
    for sender in (STRANGER, STRANGER, "x@y.example"):
        await ingest.ingest(mail(sender, "Hi"), mailbox="INBOX", uid=None)
    everything = (await staff.get("/v1/mail/held")).json()
    assert everything["count"] == 3
    assert {m["reason"] for m in everything["data"]} == {"unknown_sender"}
    assert everything["data"][0]["note"]
    mine = (await staff.get("/v1/mail/held", params={"sender": STRANGER, "limit": 1})).json()
    assert (mine["count"], len(mine["data"])) == (2, 1)
    page = await staff.get(
        "/v1/mail/held", params={"sender": STRANGER, "limit": 1, "cursor": mine["next_cursor"]}
    )
    assert page.json()["data"][0]["id"] < mine["data"][0]["id"]
    assert page.json()["next_cursor"] is None
    moved = await staff.get("/v1/mail/held", params={"cursor": mine["next_cursor"]})
    assert moved.status_code == 422
    assert (await staff.get("/v1/mail/held", params={"reason": "nope"})).status_code == 422
    ingested = await staff.get("/v1/mail/held", params={"status": "ingested"})
    assert ingested.json()["count"] == 1 and ingested.json()["data"][0]["case"]
    denied = await acme.get("/v1/mail/held")
    assert (denied.status_code, denied.json()["code"]) == (403, "forbidden")


async def test_detail_shows_the_text_and_the_raw_mail(
    ingest: MailIngestService, staff: httpx.AsyncClient, database: Database
) -> None:
    raw = mail(STRANGER, "Who am I", "Please open a case for us.\n")
    await ingest.ingest(raw, mailbox="INBOX", uid=None)
    [row] = await inbound(database)
    detail = (await staff.get(f"/v1/mail/held/{row.id}")).json()
    assert detail["text"] == "Please open a case for us."
    assert (detail["sender"], detail["reason"], detail["auto"]) == (
        STRANGER,
        "unknown_sender",
        "human",
    )
    eml = await staff.get(f"/v1/mail/held/{row.id}", params={"format": "eml"})
    assert eml.headers["content-type"] == "message/rfc822" and eml.content == raw
    missing = await staff.get("/v1/mail/held/999999")
    assert (missing.status_code, missing.json()["code"]) == (404, "mail_not_found")
    await ingest.ingest(mail(ANN), mailbox="INBOX", uid=None)
    ingested = (await inbound(database))[-1]
    not_kept = await staff.get(f"/v1/mail/held/{ingested.id}", params={"format": "eml"})
    assert (not_kept.status_code, not_kept.json()["code"]) == (404, "mail_not_kept")


async def test_too_large_mail_shows_its_note(
    ingest: MailIngestService, staff: httpx.AsyncClient, database: Database
) -> None:
    await ingest.ingest(mail(body="y" * (SETTINGS.max_size + 1)), mailbox="INBOX", uid=None)
    [listed] = (await staff.get("/v1/mail/held", params={"reason": "too_large"})).json()["data"]
    assert "max_size" in listed["note"] and listed["size"] > SETTINGS.max_size


async def test_release_attach_open_case_and_discard(
    ingest: MailIngestService, staff: httpx.AsyncClient, database: Database
) -> None:
    opened = await ingest.ingest(mail(ANN), mailbox="INBOX", uid=None)
    ref = opened.case_ref
    await ingest.ingest(
        mail(BOB, f"Re: [{ref}] from a colleague", "Also down here.\n"), mailbox="INBOX", uid=None
    )
    await ingest.ingest(
        mail(STRANGER, "New office", "Please connect us.\n"), mailbox="INBOX", uid=None
    )
    await ingest.ingest(mail(STRANGER, "Buy now"), mailbox="INBOX", uid=None)
    forged, unknown, spam = [r.id for r in await inbound(database) if r.status == "held"]
    url = "/v1/mail/held/{}/release"

    attach = {"action": "attach", "case": ref, "visibility": "public"}
    released = await staff.post(url.format(forged), json=attach)
    assert released.status_code == 200, released.text
    assert (released.json()["status"], released.json()["case"]) == ("released", ref)
    async with database.sessionmaker() as session:
        [comment] = (await session.execute(select(Comment))).scalars()
        actions = [e.action for e in (await session.execute(select(AuditEvent))).scalars()]
    assert (comment.author, comment.visibility) == (f"customer:{BOB}", "public")
    assert "Also down here." in comment.body and BOB in comment.body
    assert actions[-2:] == ["case.comment", "mail.release"]
    again = await staff.post(url.format(forged), json=attach)
    assert (again.status_code, again.json()["code"]) == (409, "mail_not_held")

    no_customer = await staff.post(
        url.format(unknown), json={"action": "open_case", "customer": "nope"}
    )
    assert (no_customer.status_code, no_customer.json()["errors"][0]["field"]) == (422, "customer")
    refused = await staff.post(
        url.format(unknown), json={"action": "open_case", "customer": "cust-3"}
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "contract_expired")
    created = await staff.post(
        url.format(unknown), json={"action": "open_case", "customer": "cust-2"}
    )
    assert created.status_code == 200, created.text
    new_ref = created.json()["case"]
    async with database.sessionmaker() as session:
        case = (await session.execute(select(Case).where(Case.ref == new_ref))).scalar_one()
    assert (case.customer_id, case.source, case.summary) == ("cust-2", "email", "New office")
    acks = [n for n in await outbox(database) if n.kind == "case_acknowledged"]
    assert [n.data["to"] for n in acks] == [ANN, STRANGER]

    bad = await staff.post(url.format(spam), json={"action": "burn"})
    assert bad.status_code == 422
    dropped = await staff.post(url.format(spam), json={"action": "discard", "reason": "spam"})
    assert dropped.json()["status"] == "discarded"
    assert dropped.json()["resolved_by"].startswith("engineer:")
    assert (await staff.get("/v1/mail/held")).json()["count"] == 0
