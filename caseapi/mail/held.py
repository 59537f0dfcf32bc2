"""The held list: mails the ingest would not append on its own, for staff to decide.

A mail is held when its sender is unknown or not a contact of the case it names
(possibly spoofed), when it is too large or over its sender's rate, or when it
cannot be read (``caseapi.mail.matching``). Nothing held is lost: staff list them,
read them (text, or the kept raw mail as ``.eml``) and release each one:

- ``attach``: to a case, as a comment - ``public`` as the customer's reply (it
  resumes a case waiting on the customer; a finished case refuses it), or an
  ``internal`` note by the releasing staff member;
- ``open_case``: a new case (``source=email``) for a customer, with the API's
  entitlement rules, and the acknowledgement to the sender if a person wrote it;
- ``discard``: with a reason.

Every release is one transaction with its audit row (``mail.release``) and the
case's own (``case.create`` / ``case.comment``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.audit import service as audit
from caseapi.audit.enums import AuditAction
from caseapi.auth.principal import Principal
from caseapi.cases import paging
from caseapi.cases import repository as case_repository
from caseapi.cases.errors import CaseValidationError
from caseapi.clock import Clock
from caseapi.comments.models import Visibility
from caseapi.core.database import session_scope
from caseapi.core.errors import CaseNotFoundError
from caseapi.core.transaction import write_retrying
from caseapi.customers import repository as customer_repository
from caseapi.mail import repository
from caseapi.mail.errors import MailNotFoundError, MailNotHeldError
from caseapi.mail.inbound import InboundMail, InboundStatus
from caseapi.mail.ingest import MailIngestService
from caseapi.mail.intake import body_of, mail_principal
from caseapi.mail.parse import AutoKind, MailParseError, ParsedMail
from caseapi.mail.repository import HeldFilters
from caseapi.notifications.enums import NotificationKind

MAX_PAGE_SIZE: Final = paging.MAX_PAGE_SIZE


@dataclass(frozen=True, slots=True)
class AttachRelease:
    case: str
    visibility: Visibility


@dataclass(frozen=True, slots=True)
class OpenCaseRelease:
    customer: str


@dataclass(frozen=True, slots=True)
class DiscardRelease:
    reason: str


Release = AttachRelease | OpenCaseRelease | DiscardRelease


@dataclass(frozen=True, slots=True)
class HeldPage:
    items: list[InboundMail]
    count: int
    next_cursor: str | None
    #: Case id -> reference, for the mails that name a case.
    refs: dict[int, str]


@dataclass(frozen=True, slots=True)
class HeldMailView:
    """One inbound mail with what staff need to judge it."""

    mail: InboundMail
    case_ref: str | None
    #: The decoded text (quoted replies included); ``None`` when nothing was kept.
    text: str | None
    attachments: tuple[str, ...]
    auto: str | None
    defects: tuple[str, ...]


class HeldMailService:
    """Lists, shows and releases held mail on behalf of staff."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        ingest: MailIngestService,
    ) -> None:
        """Create the service.

        Args:
            sessionmaker: Session factory of the case database.
            clock: Source of every stored time.
            ingest: Parses mail and writes cases, comments and answers its way.
        """
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._ingest = ingest

    async def list_mails(
        self, *, filters: HeldFilters, cursor: str | None = None, limit: int = 50
    ) -> HeldPage:
        """One page of inbound mails matching ``filters`` (held ones by default), newest first.

        Raises:
            InvalidCursorError: ``cursor`` was not issued by this service.
            CursorFiltersChangedError: ``cursor`` was issued for other ``filters``.
        """
        result = await paging.page(
            self._sessionmaker,
            filters=filters,
            cursor=cursor,
            limit=limit,
            fetch=repository.list_mails,
            count=repository.count_mails,
        )
        async with session_scope(self._sessionmaker) as session:
            refs = await repository.case_refs(
                session, case_ids={mail.case_id for mail in result.items}
            )
        return HeldPage(
            items=result.items, count=result.count, next_cursor=result.next_cursor, refs=refs
        )

    async def get_mail(self, mail_id: int) -> HeldMailView:
        """Inbound mail ``mail_id`` with its decoded text (when its raw mail was kept).

        Raises:
            MailNotFoundError: No such mail.
        """
        async with session_scope(self._sessionmaker) as session:
            row = await repository.get(session, mail_id=mail_id)
            if row is None:
                raise MailNotFoundError(mail_id)
            refs = await repository.case_refs(session, case_ids={row.case_id})
        ref = refs.get(row.case_id) if row.case_id is not None else None
        parsed = self._parse(row)
        if parsed is None:
            text = None if row.raw is None else row.raw.decode("utf-8", "replace")
            return HeldMailView(row, ref, text, (), None, ())
        return HeldMailView(
            row,
            ref,
            parsed.text,
            tuple(a.filename for a in parsed.attachments),
            parsed.auto.value,
            parsed.defects,
        )

    def _parse(self, row: InboundMail) -> ParsedMail | None:
        if row.raw is None:
            return None
        try:
            return self._ingest.parse(row.raw)
        except MailParseError:
            return None

    async def release(self, principal: Principal, mail_id: int, request: Release) -> InboundMail:
        """Attach held mail ``mail_id`` to a case, open a case with it, or discard it.

        Raises:
            MailNotFoundError: No such mail.
            MailNotHeldError: It is not (or no longer) held.
            CaseNotFoundError: ``attach`` to a case that does not exist.
            CaseValidationError: ``open_case`` for an unknown customer; ``attach``
                publicly to a case without a customer.
            ContractRefusedError: ``open_case`` for a customer without support.
            CommentRefusedError: A public ``attach`` to a finished case.
        """
        now = self._clock.now()

        async def work(session: AsyncSession) -> InboundMail:
            row = await repository.get(session, mail_id=mail_id, lock=True)
            if row is None:
                raise MailNotFoundError(mail_id)
            if row.status != InboundStatus.HELD:
                raise MailNotHeldError(mail_id, row.status)
            parsed = self._parse(row)
            body = body_of(parsed) if parsed is not None else self._raw_text(row)
            details: dict[str, object] = {"held_reason": row.reason}
            if isinstance(request, AttachRelease):
                case = await case_repository.lock_case_by_ref(session, ref=request.case)
                if case is None:
                    raise CaseNotFoundError(request.case)
                if request.visibility is Visibility.PUBLIC:
                    if case.customer_id is None:
                        raise CaseValidationError("visibility", "this case has no customer")
                    author = mail_principal(row.sender, customer_id=case.customer_id)
                else:
                    author = principal
                text = (
                    f"Mail from {row.sender or 'an unknown sender'}, released by staff:\n\n{body}"
                )
                comment = await self._ingest.writer.comment(
                    session, case, author, body=text[:20_000], visibility=request.visibility
                )
                await self._ingest.writer.join_thread(session, case.id, row.message_id, now)
                row.case_id, row.comment_id = case.id, comment.id
                row.status = InboundStatus.RELEASED
                details.update(action="attach", case=case.ref, visibility=request.visibility)
            elif isinstance(request, OpenCaseRelease):
                customer = await customer_repository.get_customer(
                    session, customer_id=request.customer
                )
                if customer is None:
                    raise CaseValidationError("customer", f"no customer {request.customer!r}")
                mail = parsed or self._stand_in(row, body)
                case = await self._ingest.writer.open_case(
                    session, row.sender, mail, customer_id=customer.id, previous=None, now=now
                )
                if mail.auto is AutoKind.HUMAN and row.sender:
                    await self._ingest.writer.answer(
                        session,
                        NotificationKind("case_acknowledged"),
                        to=row.sender,
                        mail_subject=row.subject,
                        message_id=row.message_id,
                        customer_id=customer.id,
                        case=case,
                        now=now,
                    )
                row.case_id = case.id
                row.status = InboundStatus.RELEASED
                details.update(action="open_case", case=case.ref)
            else:
                row.status = InboundStatus.DISCARDED
                row.note = f"{row.note or ''}\ndiscarded: {request.reason}".strip()
                details.update(action="discard")
            row.resolved_at = now
            row.resolved_by = principal.actor
            await session.flush()
            await audit.record(
                session,
                AuditAction.MAIL_RELEASE,
                at=now,
                target_id=row.id,
                customer_id=await self._customer_of(session, row),
                details=details,
            )
            return row

        return await write_retrying(self._sessionmaker, work)

    @staticmethod
    def _raw_text(row: InboundMail) -> str:
        if row.raw is None:
            return "(the mail was not kept)"
        return row.raw.decode("utf-8", "replace")[:20_000]

    @staticmethod
    def _stand_in(row: InboundMail, body: str) -> ParsedMail:
        """What an unreadable mail gives a case: its subject and raw text."""
        return ParsedMail(
            message_id=None,
            in_reply_to=(),
            references=(),
            subject=row.subject,
            sender=row.sender,
            sender_name="",
            recipients=(),
            date=None,
            auto=AutoKind.HUMAN,
            bounce=None,
            text=body,
            reply_text=body,
            attachments=(),
            size=row.size,
            defects=(),
        )

    @staticmethod
    async def _customer_of(session: AsyncSession, row: InboundMail) -> str | None:
        if row.case_id is None:
            return None
        case = await case_repository.get_case_by_id(session, case_id=row.case_id)
        return case.customer_id if case is not None else None
