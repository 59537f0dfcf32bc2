"""What a mail writes, inside the caller's transaction: cases, comments, files, answers.

Shared by the ingest (``caseapi.mail.ingest``) and the held list's releases
(``caseapi.mail.held``). Cases and comments go through the API's own paths
(``CaseService.create_in``, ``CommentService.write_comment``): the same rules, the
same timeline entries and notices, the same first-response and waiting-customer
hooks, the same audit rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.auth.principal import Principal
from caseapi.cases import store
from caseapi.cases.enums import CaseSource, CaseSubject, CaseType
from caseapi.cases.models import Case
from caseapi.cases.notices import case_facts
from caseapi.cases.schemas import CaseCreate
from caseapi.cases.service import CaseService
from caseapi.cases.snapshot import Assign
from caseapi.comments.models import Comment, Visibility
from caseapi.comments.service import CommentService
from caseapi.core.errors import CaseApiError
from caseapi.mail.intake import (
    ATTACHMENT_LIMIT_CODES,
    DESCRIPTION_LENGTH,
    NO_SUBJECT,
    SUMMARY_LENGTH,
    SYNTHETIC_DOMAIN,
    AttachmentStore,
    cut,
    mail_principal,
)
from caseapi.mail.parse import ParsedMail
from caseapi.mail.threading import record_message_id
from caseapi.notifications.enums import NotificationKind
from caseapi.notifications.outbox import enqueue

#: Who gives a follow-up case to the previous case's owner (a rule, not the sender).
FOLLOW_UP_ACTOR: Final = "system:mail"


class MailWriter:
    """Writes what a mail does, in the caller's session (the caller commits)."""

    def __init__(
        self,
        *,
        cases: CaseService,
        comments: CommentService,
        attachments: AttachmentStore | None,
    ) -> None:
        """Create the writer.

        Args:
            cases: Opens cases with the API's rules.
            comments: Writes comments with the API's rules.
            attachments: Stores the mails' attachments (``None``: not stored).
        """
        self._cases = cases
        self._comments = comments
        self._attachments = attachments

    async def open_case(
        self,
        session: AsyncSession,
        sender: str,
        parsed: ParsedMail,
        *,
        customer_id: str,
        previous: Case | None,
        now: datetime,
    ) -> Case:
        """Open the case of a contact's mail (with its attachments), in ``session``.

        A follow-up (``previous``: the finished case it answers) keeps the previous
        case's type, subject and NTU, links to it (``recurrence_of``) and goes to its
        last owner.
        """
        principal = mail_principal(sender, customer_id=customer_id)
        case_type = previous.type if previous is not None else CaseType.GENERAL_REQUEST
        subject = None
        if case_type is CaseType.GENERAL_REQUEST:
            subject = (previous.subject if previous is not None else None) or CaseSubject.OTHER
            if subject is CaseSubject.ENGINEER_DISPATCH:
                subject = CaseSubject.OTHER  # needs a requested date a mail cannot give
        draft = CaseCreate(
            type=case_type,
            summary=cut(parsed.subject.strip() or NO_SUBJECT, SUMMARY_LENGTH),
            description=cut(parsed.text.strip() or "(empty message)", DESCRIPTION_LENGTH),
            customer_id=customer_id,
            subject=subject,
            ntu_id=previous.ntu_id if previous is not None else None,
            source=CaseSource.EMAIL,
        )
        case = await self._cases.create_in(
            session, principal, draft, now=now, source=CaseSource.EMAIL
        )
        if previous is not None:
            case.recurrence_of = previous.id
            await session.flush()
            if previous.assignee is not None:
                await store.apply_request(
                    session,
                    case,
                    Assign(assignee=previous.assignee, actor=FOLLOW_UP_ACTOR),
                    now=now,
                    sla=self._cases.sla,
                )
        await self.store_attachments(
            session, parsed, case_id=case.id, comment_id=None, actor=principal.actor
        )
        return case

    async def comment(
        self,
        session: AsyncSession,
        case: Case,
        principal: Principal,
        *,
        body: str,
        visibility: Visibility,
    ) -> Comment:
        """Add a mail's text to ``case`` (locked) through the API's comment path, audited.

        Raises:
            CommentRefusedError: A customer's comment on a finished case.
        """
        return await self._comments.write_audited_comment(
            session, case=case, principal=principal, body=body, visibility=visibility
        )

    async def store_attachments(
        self,
        session: AsyncSession,
        parsed: ParsedMail,
        *,
        case_id: int,
        comment_id: int | None,
        actor: str,
    ) -> str | None:
        """Store the mail's files; return a note naming those refused by the limits."""
        if self._attachments is None or not parsed.attachments:
            return None
        refused: list[str] = []
        for attachment in parsed.attachments:
            try:
                await self._attachments.store(
                    session,
                    case_id=case_id,
                    comment_id=comment_id,
                    internal=False,
                    filename=attachment.filename,
                    content_type=attachment.content_type,
                    data=attachment.data,
                    actor=actor,
                )
            except CaseApiError as exc:
                if exc.code not in ATTACHMENT_LIMIT_CODES:
                    raise
                refused.append(f"{attachment.filename} ({exc.code})")
        return f"attachments not stored: {', '.join(refused)}" if refused else None

    async def answer(
        self,
        session: AsyncSession,
        kind: NotificationKind,
        *,
        to: str,
        mail_subject: str,
        message_id: str,
        customer_id: str,
        case: Case | None,
        now: datetime,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Queue the answer to a mail's sender ``to`` (only ever a person's mail).

        The mail's Message-ID joins the case's thread, so the answer threads under it.
        """
        data: dict[str, Any] = case_facts(case) if case is not None else {}
        data.update(extra or {})
        data.update({"at": now, "to": to, "mail_subject": mail_subject, "in_reply_to": message_id})
        await enqueue(
            session,
            case_id=case.id if case is not None else None,
            customer_id=customer_id,
            kind=kind,
            data=data,
            at=now,
        )
        if case is not None:
            await self.join_thread(session, case.id, message_id, now)

    async def join_thread(
        self, session: AsyncSession, case_id: int, message_id: str, now: datetime
    ) -> None:
        """Record a received mail's Message-ID on the case's thread."""
        if message_id.endswith(f"@{SYNTHETIC_DOMAIN}>"):
            return  # nobody can refer to an id we made up
        await record_message_id(
            session, case_id=case_id, message_id=message_id, direction="in", at=now
        )
