"""Comments on cases: who may write and read which, and what the timeline records.

Rules:

- Staff (engineer, noc, admin) write public or internal comments on any case.
- A customer writes only public comments (internal -> 403 ``forbidden``), only on
  its own cases (others -> 404 ``case_not_found``) and only while the case is not
  finished (-> 409 ``case_closed``). Its comment is a customer reply:
  ``caseapi.cases.store.on_customer_reply`` resumes a case waiting on the customer.
- A staff public comment is support's first response if none was given
  (``caseapi.cases.store.on_staff_reply``). An internal note is not: the customer
  has heard nothing.
- Comments are immutable: no update or delete here, and triggers in the database.
- Every comment writes a ``comment_added`` timeline entry whose ``data`` holds
  ``comment_id``, ``visibility`` and ``author_role``, and ``body`` for public
  comments only: an internal body never reaches the timeline, so a timeline filter
  that misses one leaks no text. Customers' timelines must drop entries whose
  ``data["visibility"] == "internal"``.
- Customers read public comments only.
- A staff public comment on an upstream incident (``node:<id>:down``) is an update
  for every affected customer: it is copied, in the same transaction, to each of its
  linked customer cases still open (timeline ``data["from_parent"]`` names the
  incident), where it counts as support's reply like any other.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.attachments import repository as attachment_repository
from caseapi.attachments.models import Attachment
from caseapi.audit import service as audit
from caseapi.audit.enums import AuditAction
from caseapi.auth.principal import Principal
from caseapi.cases import repository as case_repository
from caseapi.cases import store as case_store
from caseapi.cases.config import DEFAULT_SLA
from caseapi.cases.enums import CaseEventKind
from caseapi.cases.models import Case
from caseapi.cases.sla import SlaSettings
from caseapi.clock import Clock
from caseapi.comments import repository
from caseapi.comments.errors import CommentRefusedError, InternalCommentForbiddenError
from caseapi.comments.models import Comment, Visibility
from caseapi.core.database import session_scope


@dataclass(frozen=True, slots=True)
class CommentView:
    """A comment and the attachments it carries (those the reader may see)."""

    comment: Comment
    attachments: tuple[Attachment, ...]


class CommentService:
    """Writes and reads case comments on behalf of a principal."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        sla: SlaSettings = DEFAULT_SLA,
    ) -> None:
        """Create the service.

        Args:
            sessionmaker: Session factory (``caseapi.core.database.make_sessionmaker``).
            clock: Source of every comment's timestamp.
            sla: The SLA settings a customer's reply resumes a paused case under
                (its business-hours calendars); the defaults when omitted.
        """
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._sla = sla

    async def add_comment(
        self, *, principal: Principal, ref: str, body: str, visibility: Visibility
    ) -> Comment:
        """Add a comment to case ``ref`` and record it on the timeline.

        Raises:
            CaseNotFoundError: No such case, or another customer's.
            InternalCommentForbiddenError: A customer asked for ``internal``.
            CommentRefusedError: A customer commenting on a finished case.
        """
        if principal.is_customer and visibility is not Visibility.PUBLIC:
            raise InternalCommentForbiddenError
        async with session_scope(self._sessionmaker, write=True) as session:
            case = await case_store.case_for(session, principal, ref, lock=True)
            comment = await self.write_audited_comment(
                session, case=case, principal=principal, body=body, visibility=visibility
            )
            await session.commit()
            return comment

    async def write_audited_comment(
        self,
        session: AsyncSession,
        *,
        case: Case,
        principal: Principal,
        body: str,
        visibility: Visibility,
    ) -> Comment:
        """``write_comment`` and its audit row, in the caller's transaction.

        For every path that adds a comment on its own (the API, an e-mail reply).

        Raises:
            InternalCommentForbiddenError: A customer asked for ``internal``.
            CommentRefusedError: A customer commenting on a finished case.
        """
        comment, copies = await self.write_comment(
            session, case=case, principal=principal, body=body, visibility=visibility
        )
        # The comment's id and visibility, never its body.
        await audit.record(
            session,
            AuditAction.CASE_COMMENT,
            at=comment.created_at,
            target_id=case.ref,
            customer_id=case.customer_id,
            details={"comment_id": comment.id, "visibility": visibility, "linked_cases": copies},
        )
        return comment

    async def write_comment(
        self,
        session: AsyncSession,
        *,
        case: Case,
        principal: Principal,
        body: str,
        visibility: Visibility,
    ) -> tuple[Comment, int]:
        """Add a comment to ``case`` (locked by the caller) in the caller's transaction.

        Everything ``add_comment`` does but the lookup, the audit row and the commit:
        the rules, the timeline entry, the reply hooks and the copies to linked
        customer cases. For another action that carries a comment (an attachment).

        Returns:
            The comment and how many linked customer cases got a copy.

        Raises:
            InternalCommentForbiddenError: A customer asked for ``internal``.
            CommentRefusedError: A customer commenting on a finished case.
        """
        if principal.is_customer and visibility is not Visibility.PUBLIC:
            raise InternalCommentForbiddenError
        if principal.is_customer and case.status.is_terminal:
            raise CommentRefusedError(case.ref, case.status.value)
        comment = await self._write(session, case, principal, body, visibility)
        copies = 0
        if visibility is Visibility.PUBLIC and not principal.is_customer:
            copies = await self._flow_to_linked(session, case, principal, body)
        return comment, copies

    async def _write(
        self,
        session: AsyncSession,
        case: Case,
        principal: Principal,
        body: str,
        visibility: Visibility,
        extra: dict[str, object] | None = None,
    ) -> Comment:
        now = self._clock.now()
        comment = await repository.add_comment(
            session,
            comment=Comment(
                case_id=case.id,
                created_at=now,
                author=principal.actor,
                author_role=principal.role.value,
                visibility=visibility.value,
                body=body,
            ),
        )
        data: dict[str, object] = {
            "comment_id": comment.id,
            "visibility": visibility.value,
            "author_role": principal.role.value,
            **(extra or {}),
        }
        if visibility is Visibility.PUBLIC:
            data["body"] = body
        await case_store.record_event(
            session,
            case=case,
            at=now,
            kind=CaseEventKind.COMMENT_ADDED,
            actor=principal.actor,
            data=data,
        )
        if visibility is Visibility.PUBLIC:
            await self._on_public_comment(session, case, principal)
        return comment

    async def _flow_to_linked(
        self, session: AsyncSession, case: Case, principal: Principal, body: str
    ) -> int:
        copies = 0
        linked = await case_repository.list_affected_customer_cases(session, incident=case)
        for child in linked:
            locked = await case_repository.lock_case_by_id(session, case_id=child.id)
            if locked is None or locked.status.is_terminal:
                continue
            await self._write(
                session, locked, principal, body, Visibility.PUBLIC, {"from_parent": case.ref}
            )
            copies += 1
        return copies

    async def _on_public_comment(
        self, session: AsyncSession, case: Case, principal: Principal
    ) -> None:
        now = self._clock.now()
        if principal.is_customer:
            await case_store.on_customer_reply(
                session, case_id=case.id, at=now, actor=principal.actor, sla=self._sla
            )
        else:
            await case_store.on_staff_reply(session, case_id=case.id, at=now, actor=principal.actor)

    async def list_comments(self, *, principal: Principal, ref: str) -> list[CommentView]:
        """Return the comments of case ``ref`` the caller may read, oldest first, each
        with the attachments it carries.

        Raises:
            CaseNotFoundError: No such case, or another customer's.
        """
        async with session_scope(self._sessionmaker) as session:
            case = await case_store.case_for(session, principal, ref)
            comments = await repository.list_comments(
                session,
                case_id=case.id,
                visibilities=repository.readable(customer=principal.is_customer),
            )
            carried = await attachment_repository.list_for_comments(
                session,
                comment_ids=[c.id for c in comments],
                include_internal=not principal.is_customer,
            )
        by_comment: dict[int, list[Attachment]] = {}
        for attachment in carried:
            assert attachment.comment_id is not None
            by_comment.setdefault(attachment.comment_id, []).append(attachment)
        return [CommentView(c, tuple(by_comment.get(c.id, ()))) for c in comments]
