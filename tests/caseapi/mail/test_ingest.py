"""Inbound mail to cases and comments, exactly once, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from caseapi.attachments.models import Attachment
from caseapi.audit.models import AuditEvent
from caseapi.auth.principal import Principal, Role
from caseapi.cases.enums import CaseSource, CaseStatus
from caseapi.cases.errors import CaseValidationError
from caseapi.cases.models import Case
from caseapi.cases.service import CaseService
from caseapi.cases.snapshot import Transition
from caseapi.comments.models import Comment
from caseapi.mail.inbound import InboundMail
from caseapi.mail.ingest import IngestOutcome, IngestResult, MailIngestService
from caseapi.mail.intake import IngestSettings
from caseapi.mail.threading import record_message_id
from caseapi.mail.writer import MailWriter
from caseapi.notifications.enums import DeliveryState
from caseapi.notifications.models import Notification, NotificationDelivery
from nms.clock import FakeClock
from tests.caseapi.conftest import START, Database
from tests.caseapi.mail.corpus import CORPUS, build
from tests.caseapi.mail.ingest_fixtures import (
    ANN,
    BOB,
    CARL,
    EVE,
    SETTINGS,
    STRANGER,
    SUPPORT,
    bounce,
    count,
    inbound,
    mail,
    make_ingest,
    outbox,
    seed_mail,
)

ENGINEER = Principal(key_id=None, name="alice", role=Role.ENGINEER)


@pytest.fixture
async def ingest(database: Database, clock: FakeClock) -> MailIngestService:
    await seed_mail(database)
    return make_ingest(database, clock)


async def get_case(database: Database, ref: str) -> Case:
    async with database.sessionmaker() as session:
        case = (await session.execute(select(Case).where(Case.ref == ref))).scalar_one()
        return case


async def comments(database: Database, case_id: int) -> list[Comment]:
    async with database.sessionmaker() as session:
        stmt = select(Comment).where(Comment.case_id == case_id).order_by(Comment.id)
        return list((await session.execute(stmt)).scalars())


async def opened(ingest: MailIngestService) -> str:
    result = await ingest.ingest(mail(), mailbox="INBOX", uid=None)
    assert result.outcome is IngestOutcome.CASE_OPENED, result
    assert result.case_ref is not None
    return result.case_ref


async def test_new_mail_from_a_contact_opens_a_case_and_acknowledges(
    ingest: MailIngestService, database: Database
) -> None:
    raw = mail(
        body="The link is down.\n",
        message_id="<first@client.example>",
    )
    result = await ingest.ingest(raw, mailbox="INBOX", uid=7)
    assert result == IngestResult(IngestOutcome.CASE_OPENED, result.case_ref, "case_opened")
    assert result.case_ref is not None
    case = await get_case(database, result.case_ref)
    assert (case.source, case.customer_id, case.status) == (CaseSource.EMAIL, "cust-1", "new")
    assert case.summary == "Link down at the Milan office"
    assert case.description == "The link is down."
    assert case.first_response_due_at is not None and case.first_response_due_at > START
    assert case.created_by == f"customer:{ANN}"
    acks = [n for n in await outbox(database) if n.kind == "case_acknowledged"]
    assert len(acks) == 1
    assert acks[0].data["to"] == ANN and acks[0].case_id == case.id
    assert acks[0].data["in_reply_to"] == "<first@client.example>"
    [row] = await inbound(database)
    assert (row.status, row.reason, row.case_id, row.uid, row.raw) == (
        "ingested", "case_opened", case.id, 7, None,
    )  # fmt: skip
    async with database.sessionmaker() as session:
        actions = {
            (e.action, e.actor, e.actor_kind)
            for e in (await session.execute(select(AuditEvent))).scalars()
        }
    assert ("case.create", f"mail:{ANN}", "mail") in actions
    assert ("mail.ingest", f"mail:{ANN}", "mail") in actions


async def test_reply_with_the_reference_is_a_public_comment_and_resumes_waiting(
    ingest: MailIngestService, database: Database, clock: FakeClock
) -> None:
    ref = await opened(ingest)
    cases = CaseService(sessionmaker=database.sessionmaker, clock=clock)
    await cases.act(ENGINEER, ref, lambda c: Transition(CaseStatus.IN_PROGRESS, "engineer:alice"))
    await cases.act(
        ENGINEER, ref, lambda c: Transition(CaseStatus.WAITING_CUSTOMER, "engineer:alice")
    )
    clock.advance(timedelta(minutes=5))
    reply = mail(subject=f"Re: [{ref}] Link down", body="Here are the logs.\n\n> quoted\n> text\n")
    result = await ingest.ingest(reply, mailbox="INBOX", uid=None)
    assert result == IngestResult(IngestOutcome.COMMENTED, ref, "commented")
    case = await get_case(database, ref)
    assert case.status is CaseStatus.IN_PROGRESS
    [comment] = await comments(database, case.id)
    assert (comment.visibility, comment.author_role) == ("public", "customer")
    assert comment.body == "Here are the logs."


async def test_reply_by_in_reply_to_only_lands_on_the_same_case(
    ingest: MailIngestService, database: Database
) -> None:
    ref = await opened(ingest)
    case = await get_case(database, ref)
    async with database.sessionmaker() as session:
        await record_message_id(
            session, case_id=case.id, message_id="<sent-1@nms.example>", direction="out", at=START
        )
        await session.commit()
    reply = mail(
        subject="Re: your message", body="Thanks.\n", headers=("In-Reply-To: <sent-1@nms.example>",)
    )
    result = await ingest.ingest(reply, mailbox="INBOX", uid=None)
    assert result == IngestResult(IngestOutcome.COMMENTED, ref, "commented")
    assert len(await comments(database, case.id)) == 1


async def test_staff_reply_is_a_public_staff_comment_and_the_first_response(
    ingest: MailIngestService, database: Database, clock: FakeClock
) -> None:
    ref = await opened(ingest)
    clock.advance(timedelta(minutes=10))
    result = await ingest.ingest(
        mail(EVE, f"Re: [{ref}] Link down", "We are on it.\n"), mailbox="INBOX", uid=None
    )
    assert result.outcome is IngestOutcome.COMMENTED
    case = await get_case(database, ref)
    assert case.first_responded_at == START + timedelta(minutes=10)
    [comment] = await comments(database, case.id)
    assert (comment.visibility, comment.author_role, comment.author) == (
        "public", "engineer", f"engineer:{EVE}",
    )  # fmt: skip
    updates = [n for n in await outbox(database) if n.kind == "public_update"]
    assert len(updates) == 1 and updates[0].data["body"] == "We are on it."


async def test_forged_and_unknown_senders_are_held_not_appended(
    ingest: MailIngestService, database: Database
) -> None:
    ref = await opened(ingest)
    before = len(await outbox(database))
    forged = await ingest.ingest(mail(BOB, f"Re: [{ref}] mine now"), mailbox="INBOX", uid=None)
    assert forged == IngestResult(IngestOutcome.HELD, ref, "sender_not_contact")
    unknown = await ingest.ingest(mail(STRANGER, "Hello"), mailbox="INBOX", uid=None)
    assert unknown == IngestResult(IngestOutcome.HELD, None, "unknown_sender")
    case = await get_case(database, ref)
    assert await comments(database, case.id) == []
    assert len(await outbox(database)) == before
    held = [row for row in await inbound(database) if row.status == "held"]
    assert [row.reason for row in held] == ["sender_not_contact", "unknown_sender"]
    assert all(row.raw and b"Subject:" in row.raw and row.note for row in held)
    assert await count(database, Case) == 1


async def test_auto_replies_and_bounces_are_never_answered_or_appended(
    ingest: MailIngestService, database: Database
) -> None:
    ref = await opened(ingest)
    case = await get_case(database, ref)
    async with database.sessionmaker() as session:
        event_id = str(uuid.uuid4())
        note = Notification(
            event_id=event_id, customer_id="cust-1", case_id=case.id, case_ref=ref,
            kind="public_update", data={}, created_at=START, expanded_at=START,
        )  # fmt: skip
        session.add(note)
        await session.flush()
        session.add(
            NotificationDelivery(
                notification_id=note.id, channel="email", target=ANN, state="delivered",
                attempts=1, next_attempt_at=START, created_at=START, delivered_at=START,
            )
        )  # fmt: skip
        await session.commit()
    before = len(await outbox(database))
    vacation = mail(
        ANN, f"Out of office: [{ref}]", "Away.\n", headers=("Auto-Submitted: auto-replied",)
    )
    assert await ingest.ingest(vacation, mailbox="INBOX", uid=None) == IngestResult(
        IngestOutcome.IGNORED, ref, "auto_reply"
    )
    result = await ingest.ingest(
        bounce(f"<{event_id}@nms.example>", ANN), mailbox="INBOX", uid=None
    )
    assert result == IngestResult(IngestOutcome.BOUNCE_RECORDED, None, "bounce")
    # Two robots mailing each other stop here: nothing queued, nothing appended.
    assert len(await outbox(database)) == before
    assert await comments(database, case.id) == []
    async with database.sessionmaker() as session:
        delivery = (await session.execute(select(NotificationDelivery))).scalar_one()
    assert delivery.state == DeliveryState.FAILED
    assert delivery.last_error is not None and "5.1.1" in delivery.last_error
    again = await ingest.ingest(bounce("<unknown@nms.example>", ANN), mailbox="INBOX", uid=None)
    assert again == IngestResult(IngestOutcome.IGNORED, None, "bounce_unmatched")


async def test_reply_to_a_closed_case_opens_a_follow_up_for_the_last_owner(
    ingest: MailIngestService, database: Database
) -> None:
    ref = await opened(ingest)
    async with database.sessionmaker() as session:
        case = (await session.execute(select(Case).where(Case.ref == ref))).scalar_one()
        case.status, case.closed_at, case.assignee = CaseStatus.CLOSED, START, "engineer:alice"
        await session.commit()
    result = await ingest.ingest(mail(subject=f"Re: [{ref}] again?"), mailbox="INBOX", uid=None)
    assert result.outcome is IngestOutcome.FOLLOW_UP_OPENED and result.case_ref != ref
    assert result.case_ref is not None
    follow = await get_case(database, result.case_ref)
    old = await get_case(database, ref)
    assert (follow.recurrence_of, follow.assignee) == (old.id, "engineer:alice")
    assert old.status is CaseStatus.CLOSED  # closed stays terminal
    [note] = [n for n in await outbox(database) if n.kind == "follow_up_opened"]
    assert note.data["previous_ref"] == ref and note.data["to"] == ANN


async def test_expired_contract_gets_the_refusal_and_no_case(
    ingest: MailIngestService, database: Database
) -> None:
    result = await ingest.ingest(mail(CARL, "Help"), mailbox="INBOX", uid=None)
    assert result == IngestResult(IngestOutcome.REFUSED, None, "contract_expired")
    assert await count(database, Case) == 0
    [note] = await outbox(database)
    assert (note.kind, note.data["to"], note.data["reason"], note.case_id) == (
        "request_refused", CARL, "contract_expired", None,
    )  # fmt: skip


async def test_a_flood_is_held_over_the_rate_limit(
    ingest: MailIngestService, database: Database, clock: FakeClock
) -> None:
    ref = await opened(ingest)
    for n in range(SETTINGS.rate_count - 1):
        result = await ingest.ingest(mail(subject=f"[{ref}] {n}"), mailbox="INBOX", uid=None)
        assert result.outcome is IngestOutcome.COMMENTED
    flood = await ingest.ingest(mail(subject=f"[{ref}] more"), mailbox="INBOX", uid=None)
    assert flood == IngestResult(IngestOutcome.HELD, ref, "rate_limited")
    clock.advance(SETTINGS.rate_window)
    later = await ingest.ingest(mail(subject=f"[{ref}] later"), mailbox="INBOX", uid=None)
    assert later.outcome is IngestOutcome.COMMENTED


async def test_too_large_is_held_with_a_note_and_only_its_head_kept(
    ingest: MailIngestService, database: Database
) -> None:
    raw = mail(body="x" * (SETTINGS.max_size + 10))
    result = await ingest.ingest(raw, mailbox="INBOX", uid=None)
    assert result == IngestResult(IngestOutcome.HELD, None, "too_large")
    [row] = await inbound(database)
    assert row.size == len(raw) and row.raw is not None
    assert len(row.raw) < 2048 and row.raw.startswith(b"From:")
    assert row.note is not None and str(len(raw)) in row.note and "max_size" in row.note


async def test_the_same_mail_twice_is_ingested_once(
    ingest: MailIngestService, database: Database
) -> None:
    raw = mail(message_id="<once@client.example>")
    first = await ingest.ingest(raw, mailbox="INBOX", uid=3)
    again = await ingest.ingest(raw, mailbox="INBOX", uid=3)
    piped = await ingest.ingest(b"Received: from mta\r\n" + raw, mailbox="deliver", uid=None)
    assert first.outcome is IngestOutcome.CASE_OPENED
    assert again == piped == IngestResult(IngestOutcome.DUPLICATE, first.case_ref, "duplicate")
    assert await count(database, Case) == 1
    rows = await inbound(database)
    assert [(r.mailbox, r.status) for r in rows] == [
        ("INBOX", "ingested"),
        ("deliver", "duplicate"),
    ]


async def test_concurrent_deliveries_of_one_mail_store_it_once(
    ingest: MailIngestService, database: Database
) -> None:
    raw = mail(message_id="<race@client.example>")
    results = await asyncio.gather(
        ingest.ingest(raw, mailbox="INBOX", uid=1), ingest.ingest(raw, mailbox="deliver", uid=None)
    )
    assert sorted(r.outcome for r in results) == [
        IngestOutcome.CASE_OPENED,
        IngestOutcome.DUPLICATE,
    ]
    assert await count(database, Case) == 1


class CrashOnce(MailIngestService):
    crashed = False

    async def _before_commit(self, session: object, result: IngestResult) -> None:
        if not CrashOnce.crashed:
            CrashOnce.crashed = True
            raise RuntimeError("crash between the writes and the commit")


async def test_a_crash_before_the_commit_leaves_nothing_and_the_retry_ingests_once(
    ingest: MailIngestService, database: Database, clock: FakeClock
) -> None:
    crashing = make_ingest(database, clock, cls=CrashOnce)
    CrashOnce.crashed = False
    raw = mail(headers=("Content-Type: text/plain",), message_id="<crash@client.example>")
    with pytest.raises(RuntimeError):
        await crashing.ingest(raw, mailbox="INBOX", uid=9)
    assert await count(database, Case) == 0
    assert await count(database, InboundMail) == 0
    assert await outbox(database) == []
    result = await crashing.ingest(raw, mailbox="INBOX", uid=9)
    assert result.outcome is IngestOutcome.CASE_OPENED
    assert await crashing.ingest(raw, mailbox="INBOX", uid=9) == IngestResult(
        IngestOutcome.DUPLICATE, result.case_ref, "duplicate"
    )
    assert await count(database, Case) == 1


async def test_attachments_are_stored_on_the_case(
    ingest: MailIngestService, database: Database
) -> None:
    raw = build(
        f"From: Ann <{ANN}>",
        f"To: {SUPPORT}",
        "Subject: Photos of the router",
        "Message-ID: <files@client.example>",
        'Content-Type: multipart/mixed; boundary="B"',
        body=(
            "--B\nContent-Type: text/plain\n\nSee the photo.\n"
            '--B\nContent-Type: image/png; name="../../router.png"\n'
            "Content-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--B--\n"
        ),
    )
    result = await ingest.ingest(raw, mailbox="INBOX", uid=None)
    assert result.outcome is IngestOutcome.CASE_OPENED and result.case_ref is not None
    case = await get_case(database, result.case_ref)
    async with database.sessionmaker() as session:
        [file] = (await session.execute(select(Attachment))).scalars()
    assert (file.case_id, file.filename, file.internal) == (case.id, "router.png", False)


async def test_every_corpus_message_is_ingested_or_held_with_a_reason(
    database: Database, clock: FakeClock
) -> None:
    await seed_mail(database)
    ingest = make_ingest(
        database,
        clock,
        IngestSettings(address="support@isp.example", max_size=SETTINGS.max_size),
    )
    for uid, (name, raw) in enumerate(sorted(CORPUS.items())):
        result = await ingest.ingest(raw, mailbox="corpus", uid=uid)
        assert result.reason, name
    rows = await inbound(database)
    assert len(rows) == len(CORPUS)
    assert all(row.status and row.reason for row in rows)
    # Nothing in the corpus is from a known contact: nothing is appended or answered.
    assert {row.status for row in rows} <= {"held", "ignored", "duplicate"}
    assert await outbox(database) == []


class RefusingWriter(MailWriter):
    async def open_case(self, *args: object, **kwargs: object) -> Case:
        raise CaseValidationError("summary", "refused by a rule")


async def test_a_mail_a_rule_refuses_is_held_not_retried_forever(
    ingest: MailIngestService, database: Database, clock: FakeClock
) -> None:
    refusing = make_ingest(database, clock)
    writer = refusing.writer
    refusing.writer = RefusingWriter(
        cases=writer._cases, comments=writer._comments, attachments=writer._attachments
    )
    result = await refusing.ingest(mail(), mailbox="INBOX", uid=4)
    assert result == IngestResult(IngestOutcome.HELD, None, "ingest_failed")
    [row] = await inbound(database)
    assert row.status == "held" and row.note is not None and "validation_error" in row.note
    assert await count(database, Case) == 0 and await outbox(database) == []
