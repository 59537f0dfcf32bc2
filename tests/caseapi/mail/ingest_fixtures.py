"""The mail ingest over a seeded database: customers, contacts, staff, and mail builders."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from caseapi.attachments.service import AttachmentService
from caseapi.cases.service import CaseService
from caseapi.comments.service import CommentService
from caseapi.customers.models import Customer, CustomerContact
from caseapi.mail.inbound import InboundMail
from caseapi.mail.ingest import MailIngestService
from caseapi.mail.intake import IngestSettings
from caseapi.notifications.models import Notification
from nms.clock import FakeClock
from tests.caseapi.conftest import Database
from tests.caseapi.mail.corpus import build

SUPPORT = "support@nms.example"
ANN = "ann@acme.example"  # contact of cust-1 (active)
BOB = "bob@other.example"  # contact of cust-2 (active)
CARL = "carl@gone.example"  # contact of cust-3 (expired)
EVE = "eve@noc.example"  # staff (staff domain)
STRANGER = "who@nowhere.example"

SETTINGS = IngestSettings(
    address=SUPPORT,
    staff_domains=frozenset({"noc.example"}),
    rate_count=5,
    rate_window=timedelta(hours=1),
    max_size=64 * 1024,
)


async def seed_mail(database: Database) -> None:
    """Customers cust-1/cust-2 (active), cust-3 (expired), one contact each."""
    async with database.sessionmaker() as session:
        for cid, status in (("cust-1", "active"), ("cust-2", "active"), ("cust-3", "expired")):
            if await session.get(Customer, cid) is None:  # the API tests' ``seed`` has some
                session.add(
                    Customer(id=cid, name=cid.title(), contract_status=status, attributes={})
                )
        await session.flush()
        for cid, email in (("cust-1", ANN), ("cust-2", BOB), ("cust-3", CARL)):
            session.add(
                CustomerContact(
                    customer_id=cid, email=email, name=email.split("@")[0].title(),
                    language="en", roles=["technical"],
                )
            )  # fmt: skip
        await session.commit()


def make_ingest(
    database: Database,
    clock: FakeClock,
    settings: IngestSettings = SETTINGS,
    cls: type[MailIngestService] = MailIngestService,
) -> MailIngestService:
    comments = CommentService(sessionmaker=database.sessionmaker, clock=clock)
    return cls(
        sessionmaker=database.sessionmaker,
        clock=clock,
        settings=settings,
        cases=CaseService(sessionmaker=database.sessionmaker, clock=clock),
        comments=comments,
        attachments=AttachmentService(
            sessionmaker=database.sessionmaker, clock=clock, comments=comments
        ),
    )


def mail(
    sender: str = ANN,
    subject: str = "Link down at the Milan office",
    body: str = "Hello,\nthe link is down since 9:00.\nAnn\n",
    *,
    headers: tuple[str, ...] = (),
    message_id: str | None = None,
) -> bytes:
    """A plain mail to support from ``sender`` (a fresh Message-ID unless given)."""
    mid = message_id or f"<{uuid.uuid4().hex}@client.example>"
    return build(
        f"From: {sender.split('@')[0].title()} <{sender}>",
        f"To: {SUPPORT}",
        f"Subject: {subject}",
        "Date: Sun, 01 Mar 2026 12:00:00 +0000",
        f"Message-ID: {mid}",
        *headers,
        body=body,
    )


def bounce(original_message_id: str, recipient: str) -> bytes:
    """A DSN: our mail ``original_message_id`` to ``recipient`` failed (5.1.1)."""
    return build(
        "From: MAILER-DAEMON@mx.acme.example",
        f"To: {SUPPORT}",
        "Subject: Undelivered Mail Returned to Sender",
        "Auto-Submitted: auto-replied",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="R"',
        body=(
            "--R\nContent-Type: text/plain\n\nYour mail could not be delivered.\n"
            "--R\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx\n\n"
            f"Final-Recipient: rfc822; {recipient}\nAction: failed\nStatus: 5.1.1\n\n"
            "--R\nContent-Type: text/rfc822-headers\n\n"
            f"Message-ID: {original_message_id}\nSubject: [CS-2026-000001] x\n\n"
            "--R--\n"
        ),
    )


async def count(database: Database, model: Any, *where: Any) -> int:
    async with database.sessionmaker() as session:
        stmt = select(func.count()).select_from(model).where(*where)
        return int((await session.execute(stmt)).scalar_one())


async def inbound(database: Database) -> list[InboundMail]:
    async with database.sessionmaker() as session:
        return list((await session.execute(select(InboundMail).order_by(InboundMail.id))).scalars())


async def outbox(database: Database) -> list[Notification]:
    async with database.sessionmaker() as session:
        stmt = select(Notification).order_by(Notification.id)
        return list((await session.execute(stmt)).scalars())
