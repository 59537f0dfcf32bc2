"""Inbound mail to cases and comments, exactly once: ``MailIngestService.ingest``.

One mail, one write transaction (``write_retrying``):

1. dedup: the mailbox's ``(mailbox, uid)`` seen before -> ``DUPLICATE`` (nothing
   new stored); the same Message-ID from the same sender seen before (fetched
   again, or once by IMAP and once by the MTA pipe) -> a ``duplicate`` row and
   ``DUPLICATE``. The new row is inserted first: a concurrent ingest of the same
   mail waits on its unique key and, once this one commits, fails and finds it;
2. the facts (the case named by ``[CS-...]`` or by the thread, who the sender is,
   the sender's rate) and the pure decision (``caseapi.mail.matching``);
3. what it does: a case (``source=email``) with its acknowledgement, a comment
   through the API's own path (a staff reply is the first response, a customer's
   resumes a case waiting on it), a follow-up case for a reply to a finished case,
   a refusal mail, a bounce marking our delivery failed, or nothing (held, ignored);
   the attachments; the Message-ID joins the case's thread;
4. the ``inbound_mails`` row and the audit rows (actor ``mail:<sender>``), then commit.

A crash before the commit leaves nothing, and the retry ingests the mail once. The
caller (the IMAP poller) moves or flags the mail only after ``ingest`` returned.

Only a person's mail (``AutoKind.HUMAN``) is ever answered: auto-replies, lists,
our own mails coming back and bounces get no mail, so two robots stop at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.audit import service as audit
from caseapi.audit.context import AuditActor, AuditOrigin, audit_origin
from caseapi.audit.enums import AuditAction
from caseapi.cases import repository as case_repository
from caseapi.cases.models import Case
from caseapi.cases.service import CaseService
from caseapi.clock import Clock
from caseapi.comments.models import Comment, Visibility
from caseapi.comments.service import CommentService
from caseapi.core.errors import CaseApiError, DatabaseError
from caseapi.core.transaction import write_retrying
from caseapi.customers import repository as customer_repository
from caseapi.customers.contacts import contact_by_email
from caseapi.mail import repository
from caseapi.mail.inbound import InboundMail, InboundStatus
from caseapi.mail.intake import (
    AttachmentStore,
    IngestSettings,
    body_of,
    dedup_key,
    kept_bytes,
    mail_principal,
    synthetic_message_id,
)
from caseapi.mail.matching import (
    HELD_NOTES,
    Action,
    CaseFacts,
    Decision,
    MailFacts,
    Reason,
    SenderFacts,
    decide,
)
from caseapi.mail.parse import AutoKind, MailParseError, ParsedMail, find_case_ref, parse_mail
from caseapi.mail.writer import MailWriter
from caseapi.notifications.enums import NotificationKind


class IngestOutcome(StrEnum):
    CASE_OPENED = "case_opened"
    COMMENTED = "commented"
    FOLLOW_UP_OPENED = "follow_up_opened"
    HELD = "held"
    IGNORED = "ignored"
    REFUSED = "refused"
    DUPLICATE = "duplicate"
    BOUNCE_RECORDED = "bounce_recorded"


@dataclass(frozen=True)
class IngestResult:
    """What one mail did: the outcome, the case it concerns, and the reason code."""

    outcome: IngestOutcome
    case_ref: str | None
    reason: str | None


@dataclass(slots=True)
class _Mail:
    """One mail on its way through ``ingest``."""

    raw: bytes
    kept: bytes
    parsed: ParsedMail | None
    parse_error: str | None
    message_id: str
    sender: str
    subject: str
    mailbox: str
    uid: int | None
    too_large: bool


class MailIngestService:
    """Turns raw inbound mail into cases, comments, answers, or held mail."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        settings: IngestSettings,
        cases: CaseService,
        comments: CommentService | None = None,
        attachments: AttachmentStore | None = None,
    ) -> None:
        """Create the service.

        Args:
            sessionmaker: Session factory of the case database.
            clock: Source of every stored time (and of the rate-limit window).
            settings: Support address, staff, size and rate limits.
            cases: Opens cases with the API's rules.
            comments: Writes comments with the API's rules (built when omitted).
            attachments: Stores the mails' attachments (``None``: not stored).
        """
        self._sessionmaker = sessionmaker
        self._clock = clock
        self.settings = settings
        self.writer = MailWriter(
            cases=cases,
            comments=comments or CommentService(sessionmaker=sessionmaker, clock=clock),
            attachments=attachments,
        )

    # -- the entry point ---------------------------------------------------------

    async def ingest(self, raw: bytes, *, mailbox: str, uid: int | None) -> IngestResult:
        """Ingest one raw mail from ``mailbox`` (IMAP ``uid``, ``None`` for the pipe).

        Idempotent: the same mail again (same ``uid``, or same Message-ID and sender)
        answers ``DUPLICATE`` and stores nothing new.

        Raises:
            ValueError: An empty ``mailbox`` or a negative ``uid``.
            DatabaseUnavailableError: The database cannot be reached (nothing stored;
                try again later).
        """
        if not mailbox or (uid is not None and uid < 0):
            raise ValueError("mailbox must be named and uid must not be negative")
        mail = self._prepare(raw, mailbox=mailbox[:200], uid=uid)
        origin = AuditOrigin(client=f"mail:{mail.mailbox}"[:64], actor=AuditActor.mail(mail.sender))
        with audit_origin(origin):
            try:
                return await write_retrying(self._sessionmaker, lambda s: self._ingest(s, mail))
            except DatabaseError:
                raise  # nothing stored: the caller tries again later
            except CaseApiError as exc:
                # A rule refused what the mail asked for (nothing of it was stored):
                # hold it for staff rather than fail it again on every poll.
                failure = exc
            return await write_retrying(
                self._sessionmaker, lambda s: self._ingest(s, mail, failure=failure)
            )

    def parse(self, raw: bytes) -> ParsedMail:
        """``raw`` parsed with our own address and loop marker.

        Raises:
            MailParseError: Not a mail at all.
        """
        address = self.settings.address
        ours = self.settings.own_addresses | {address}
        return parse_mail(raw, own_addresses=ours, loop_marker=address)

    def _prepare(self, raw: bytes, *, mailbox: str, uid: int | None) -> _Mail:
        too_large = len(raw) > self.settings.max_size
        kept = kept_bytes(raw, self.settings.max_size)
        parsed: ParsedMail | None = None
        error: str | None = None
        try:
            parsed = self.parse(kept)
        except MailParseError as exc:
            error = exc.reason
        message_id = (parsed.message_id if parsed else None) or synthetic_message_id(parsed, raw)
        return _Mail(
            raw=raw,
            kept=kept,
            parsed=parsed,
            parse_error=error,
            message_id=message_id.replace("\x00", "")[:998],
            sender=(parsed.sender if parsed else "").replace("\x00", "")[:320],
            subject=(parsed.subject if parsed else "").replace("\x00", "")[:998],
            mailbox=mailbox,
            uid=uid,
            too_large=too_large,
        )

    async def _ingest(
        self, session: AsyncSession, mail: _Mail, *, failure: CaseApiError | None = None
    ) -> IngestResult:
        now = self._clock.now()
        if mail.uid is not None:
            seen = await repository.by_uid(session, mailbox=mail.mailbox, uid=mail.uid)
            if seen is not None:
                return await self._duplicate_of(session, seen)
        key = dedup_key(mail.message_id, mail.sender)
        original = await repository.by_dedup_key(session, key=key)
        row = self._row(mail, now, key=None if original is not None else key)
        if original is not None:
            row.status, row.reason, row.case_id = (
                InboundStatus.DUPLICATE,
                "duplicate",
                original.case_id,
            )
            await repository.add(session, row=row)
            return await self._duplicate_of(session, original)
        # Claims the dedup key (and the uid) before any other write.
        await repository.add(session, row=row)
        if failure is not None:
            result = self._hold(
                row, mail, Reason.INGEST_FAILED, None, note=f"{failure.code}: {failure}"
            )
        elif mail.parsed is None:
            result = self._hold(row, mail, Reason.UNPARSEABLE, None, note=mail.parse_error)
        else:
            decision = await self._decide(session, mail, mail.parsed, row, now)
            result = await self._execute(session, mail, mail.parsed, row, decision, now)
        await session.flush()
        await audit.record(
            session,
            AuditAction.MAIL_INGEST,
            at=now,
            target_id=row.id,
            customer_id=await self._customer_of(session, row),
            details={"status": row.status, "reason": row.reason, "case": result.case_ref},
        )
        await self._before_commit(session, result)
        return result  # ``write_retrying`` commits

    async def _before_commit(self, session: AsyncSession, result: IngestResult) -> None:
        """Called just before the commit (tests inject a crash here)."""

    # -- facts and decision ------------------------------------------------------

    async def _decide(
        self,
        session: AsyncSession,
        mail: _Mail,
        parsed: ParsedMail,
        row: InboundMail,
        now: datetime,
    ) -> Decision:
        ref = find_case_ref(parsed.subject)
        case: Case | None = None
        if ref is not None:
            case = await case_repository.lock_case_by_ref(session, ref=ref.upper())
        if case is None and ref is None:
            ids = (*parsed.in_reply_to, *parsed.references)
            case_id = await repository.case_for_message_ids(session, ids)
            if case_id is not None:
                case = await case_repository.lock_case_by_id(session, case_id=case_id)
        facts = (
            CaseFacts(
                id=case.id,
                ref=case.ref,
                customer_id=case.customer_id,
                terminal=case.status.is_terminal,
            )
            if case is not None
            else None
        )
        sender = await self._sender(session, mail.sender)
        limited = False
        if parsed.auto is AutoKind.HUMAN and mail.sender:
            since = now - self.settings.rate_window
            recent = await repository.count_recent(
                session, sender=mail.sender, since=since, exclude_id=row.id
            )
            limited = recent >= self.settings.rate_count
        return decide(
            MailFacts(
                auto=parsed.auto,
                sender=sender,
                case=facts,
                names_ref=ref is not None,
                too_large=mail.too_large,
                rate_limited=limited,
            )
        )

    async def _sender(self, session: AsyncSession, address: str) -> SenderFacts:
        if not address:
            return SenderFacts("")
        if self.settings.is_staff(address):
            return SenderFacts(address, staff=True)
        contact = await contact_by_email(session, address)
        if contact is None:
            return SenderFacts(address)
        customer = await customer_repository.get_customer(session, customer_id=contact.customer_id)
        status = customer.contract_status if customer is not None else None
        return SenderFacts(address, customer_id=contact.customer_id, contract_status=status)

    # -- what a decision does ----------------------------------------------------

    async def _execute(
        self,
        session: AsyncSession,
        mail: _Mail,
        parsed: ParsedMail,
        row: InboundMail,
        decision: Decision,
        now: datetime,
    ) -> IngestResult:
        action, reason = decision.action, decision.reason
        row.reason = reason.value
        if decision.case is not None:
            row.case_id = decision.case.id
        ref = decision.case.ref if decision.case is not None else None
        if action is Action.HOLD:
            return self._hold(row, mail, reason, decision.case)
        if action is Action.IGNORE:
            row.status = InboundStatus.IGNORED
            return IngestResult(IngestOutcome.IGNORED, ref, reason.value)
        if action is Action.BOUNCE:
            return await self._bounce(session, parsed, row, now)
        if action is Action.REFUSE:
            assert decision.customer_id is not None
            row.status = InboundStatus.REFUSED
            await self.writer.answer(
                session,
                NotificationKind("request_refused"),
                to=mail.sender,
                mail_subject=mail.subject,
                message_id=mail.message_id,
                customer_id=decision.customer_id,
                case=None,
                now=now,
                extra={"reason": reason.value},
            )
            return IngestResult(IngestOutcome.REFUSED, ref, reason.value)
        row.status = InboundStatus.INGESTED
        if action is Action.COMMENT:
            assert decision.case is not None
            comment = await self._comment(session, mail, parsed, decision, now)
            row.comment_id = comment.id
            row.note = await self.writer.store_attachments(
                session,
                parsed,
                case_id=decision.case.id,
                comment_id=comment.id,
                actor=comment.author,
            )
            await self.writer.join_thread(session, decision.case.id, mail.message_id, now)
            return IngestResult(IngestOutcome.COMMENTED, decision.case.ref, reason.value)
        assert decision.customer_id is not None
        previous = None
        if action is Action.FOLLOW_UP:
            assert decision.case is not None
            previous = await case_repository.get_case_by_id(session, case_id=decision.case.id)
        case = await self.writer.open_case(
            session,
            mail.sender,
            parsed,
            customer_id=decision.customer_id,
            previous=previous,
            now=now,
        )
        row.case_id = case.id
        kind = "case_acknowledged" if previous is None else "follow_up_opened"
        extra: dict[str, Any] = {} if previous is None else {"previous_ref": previous.ref}
        await self.writer.answer(
            session,
            NotificationKind(kind),
            to=mail.sender,
            mail_subject=mail.subject,
            message_id=mail.message_id,
            customer_id=decision.customer_id,
            case=case,
            now=now,
            extra=extra,
        )
        outcome = IngestOutcome.CASE_OPENED if previous is None else IngestOutcome.FOLLOW_UP_OPENED
        return IngestResult(outcome, case.ref, reason.value)

    def _hold(
        self,
        row: InboundMail,
        mail: _Mail,
        reason: Reason,
        case: CaseFacts | None,
        *,
        note: str | None = None,
    ) -> IngestResult:
        row.status = InboundStatus.HELD
        row.reason = reason.value
        row.raw = mail.kept
        text = HELD_NOTES.get(reason, reason.value)
        if reason is Reason.TOO_LARGE:
            text = f"{len(mail.raw)} bytes, over the limit of {self.settings.max_size}: {text}"
        row.note = f"{text}: {note}" if note else text
        return IngestResult(IngestOutcome.HELD, case.ref if case else None, reason.value)

    async def _comment(
        self,
        session: AsyncSession,
        mail: _Mail,
        parsed: ParsedMail,
        decision: Decision,
        now: datetime,
    ) -> Comment:
        assert decision.case is not None
        case = await case_repository.lock_case_by_id(session, case_id=decision.case.id)
        assert case is not None
        principal = mail_principal(
            mail.sender, customer_id=decision.customer_id, staff=decision.as_staff
        )
        return await self.writer.comment(
            session, case, principal, body=body_of(parsed), visibility=Visibility.PUBLIC
        )

    async def _bounce(
        self, session: AsyncSession, parsed: ParsedMail, row: InboundMail, now: datetime
    ) -> IngestResult:
        bounce = parsed.bounce
        ids: Sequence[str] = bounce.original_message_ids if bounce is not None else ()
        if not ids:
            ids = (*parsed.in_reply_to, *parsed.references)
        recipients = bounce.recipients if bounce is not None else ()
        status = bounce.status if bounce is not None else None
        failed = await repository.fail_deliveries(
            session,
            message_ids=ids,
            recipients=recipients,
            error=f"bounced: {status or 'no status'} (inbound mail {row.id})",
            now=now,
        )
        if failed:
            row.status, row.reason = InboundStatus.INGESTED, Reason.BOUNCE.value
            row.note = f"{len(failed)} delivery(ies) marked failed: {', '.join(map(str, failed))}"
            row.case_id = row.case_id or await repository.case_of_delivery(session, failed[0])
            return IngestResult(IngestOutcome.BOUNCE_RECORDED, None, Reason.BOUNCE.value)
        row.status, row.reason = InboundStatus.IGNORED, Reason.BOUNCE_UNMATCHED.value
        return IngestResult(IngestOutcome.IGNORED, None, Reason.BOUNCE_UNMATCHED.value)

    # -- helpers -----------------------------------------------------------------

    def _row(self, mail: _Mail, now: datetime, *, key: str | None) -> InboundMail:
        return InboundMail(
            mailbox=mail.mailbox,
            uid=mail.uid,
            message_id=mail.message_id,
            dedup_key=key,
            sha256=hashlib.sha256(mail.raw).hexdigest(),
            received_at=now,
            sender=mail.sender,
            subject=mail.subject,
            size=len(mail.raw),
            status=InboundStatus.INGESTED,
            reason="",
        )

    async def _duplicate_of(self, session: AsyncSession, original: InboundMail) -> IngestResult:
        ref = None
        if original.case_id is not None:
            ref = await case_repository.get_case_ref_by_id(session, case_id=original.case_id)
        return IngestResult(IngestOutcome.DUPLICATE, ref, "duplicate")

    async def _customer_of(self, session: AsyncSession, row: InboundMail) -> str | None:
        if row.case_id is None:
            return None
        case = await case_repository.get_case_by_id(session, case_id=row.case_id)
        return case.customer_id if case is not None else None
