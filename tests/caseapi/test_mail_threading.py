"""One thread per case: Message-IDs recorded, and every case mail threads (real SMTP)."""

from __future__ import annotations

from datetime import timedelta
from email.message import Message

from sqlalchemy import select

from caseapi.auth.principal import Principal, Role
from caseapi.cases.models import Case
from caseapi.comments.models import Visibility
from caseapi.comments.service import CommentService
from caseapi.incidents import IncidentService
from caseapi.mail.config import MailSettings
from caseapi.mail.models import MailMessage
from caseapi.mail.threading import (
    MAX_REFERENCES,
    case_for_message_ids,
    extend_thread,
    record_message_id,
    thread_headers,
)
from caseapi.notifications.dispatcher import NotificationDispatcher
from nms.clock import FakeClock
from tests.caseapi.conftest import START, Database
from tests.caseapi.notification_fixtures import (
    SmtpSink,
    add_customer_with_email,
    smtp_sink_fixture,  # noqa: F401
)
from tests.caseapi.test_notifications import open_case, settings_for

MAILBOX = MailSettings(address="Support@NMS.example", name="NMS Support")
STAFF = Principal(key_id=None, name="alice", role=Role.ENGINEER)


async def test_message_ids_record_once_and_name_their_case(
    database: Database, incidents: IncidentService
) -> None:
    first = await open_case(incidents, database, "ntu-1")
    second = await open_case(incidents, database, "ntu-2")
    async with database.sessionmaker() as session:
        assert await thread_headers(session, case_id=first.id) == (None, ())
        for n in range(MAX_REFERENCES + 3):
            at = START + timedelta(minutes=n)
            await record_message_id(
                session, case_id=first.id, message_id=f"<m{n}@x>", direction="out", at=at
            )
        # A retry (or a second recipient) records the same id again: nothing changes.
        await record_message_id(
            session, case_id=second.id, message_id="<m0@x>", direction="in", at=START
        )
        await record_message_id(
            session, case_id=second.id, message_id="<s0@x>", direction="in", at=START
        )
        await session.commit()
        rows = (await session.execute(select(MailMessage))).scalars().all()
        assert len(rows) == MAX_REFERENCES + 4
        assert {r.case_id for r in rows if r.message_id == "<m0@x>"} == {first.id}

        root, references = await thread_headers(session, case_id=first.id)
        assert root == "<m0@x>"
        newest = [f"<m{n}@x>" for n in range(4, MAX_REFERENCES + 3)]
        assert references == ("<m0@x>", *newest) and len(references) == MAX_REFERENCES

        assert await case_for_message_ids(session, ["<nope@x>", "<s0@x>"]) == second.id
        assert await case_for_message_ids(session, ["<m2@x>", "<s0@x>"]) == first.id  # newer
        assert await case_for_message_ids(session, ["<nope@x>"]) is None
        assert await case_for_message_ids(session, []) is None
    assert extend_thread((None, ()), "<a@x>") == ("<a@x>", ("<a@x>",))
    assert extend_thread(("<a@x>", ("<a@x>",)), "<a@x>") == ("<a@x>", ("<a@x>",))


def plain_text(mail: Message) -> str:
    """The ``text/plain`` part of ``mail``, decoded."""
    for part in mail.walk():
        if part.get_content_type() == "text/plain":
            return bytes(part.get_payload(decode=True)).decode(
                part.get_content_charset() or "utf-8"
            )
    raise AssertionError("no text/plain part")


def _ids(mail: Message) -> tuple[str, str | None, list[str]]:
    references = str(mail["References"] or "").split()
    in_reply_to = None if mail["In-Reply-To"] is None else str(mail["In-Reply-To"])
    return str(mail["Message-ID"]), in_reply_to, references


async def test_case_mails_thread_and_the_staff_reply_answers_the_customer(
    database: Database, incidents: IncidentService, clock: FakeClock, smtp_sink: SmtpSink
) -> None:
    await add_customer_with_email(database.sessionmaker, "cust-1", "ops@cust1.example")
    sender = NotificationDispatcher(
        sessionmaker=database.sessionmaker,
        settings=settings_for(smtp_sink),
        clock=clock,
        rng=lambda: 1.0,
        mail=MAILBOX,
    )
    case = await open_case(incidents, database, "ntu-1")
    comments = CommentService(sessionmaker=database.sessionmaker, clock=clock)
    await comments.add_comment(
        principal=STAFF, ref=case.ref, body="Looking at it.", visibility=Visibility.PUBLIC
    )
    # Two mails claimed in one pass still thread one after the other.
    assert await sender.run_once(START) == 2
    # The customer answers by mail (the ingest records it), then staff reply.
    async with database.sessionmaker() as session:
        await record_message_id(
            session,
            case_id=case.id,
            message_id="<reply-1@cust1.example>",
            direction="in",
            at=START + timedelta(minutes=1),
        )
        await session.commit()
    await comments.add_comment(
        principal=STAFF, ref=case.ref, body="Fixed the fibre.", visibility=Visibility.PUBLIC
    )
    other = await open_case(incidents, database, "ntu-2")
    assert await sender.run_once(START + timedelta(minutes=2)) == 2

    # One recipient's mails go out in the order they were written.
    ours = [m for m in smtp_sink.messages if m["X-NMS-Case"] == case.ref]
    opened, update, reply = ours
    assert "Case opened" in str(opened["Subject"])
    first_id, first_reply, first_refs = _ids(opened)
    assert (first_reply, first_refs) == (None, [])  # the thread's root
    second_id, second_reply, second_refs = _ids(update)
    assert second_reply == first_id and second_refs == [first_id]
    third_id, third_reply, third_refs = _ids(reply)
    assert "Fixed the fibre." in plain_text(reply)
    assert third_reply == first_id
    assert third_refs == [first_id, second_id, "<reply-1@cust1.example>"]  # grows
    assert len({first_id, second_id, third_id}) == 3
    for mail in ours:
        assert str(mail["Subject"]).startswith(f"[{case.ref}] ")
        assert mail["Reply-To"] == "NMS Support <support@nms.example>"
        assert mail["X-Loop"] == "support@nms.example"
        assert mail["Auto-Submitted"] == "auto-generated"
    # Another case is a thread of its own.
    [other_mail] = [m for m in smtp_sink.messages if m["X-NMS-Case"] == other.ref]
    assert other_mail["In-Reply-To"] is None and other_mail["References"] is None
    async with database.sessionmaker() as session:
        rows = (await session.execute(select(MailMessage).order_by(MailMessage.id))).scalars()
        recorded = {(r.message_id, r.case_id, r.direction) for r in rows}
        ours_case = (await session.execute(select(Case.id).where(Case.ref == other.ref))).scalar()
    assert recorded == {
        (first_id, case.id, "out"),
        (second_id, case.id, "out"),
        ("<reply-1@cust1.example>", case.id, "in"),
        (third_id, case.id, "out"),
        (str(other_mail["Message-ID"]), ours_case, "out"),
    }
