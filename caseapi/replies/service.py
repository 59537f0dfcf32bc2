"""Canned replies: staff CRUD, and sending one on a case as a comment.

Rules:

- Staff only (the routes guard it). Title and body are checked at save: an unknown
  ``${placeholder}`` is a 422 naming the field and the placeholder.
- Sending fills the reply with the case's fields (times in the customer's zone, in
  the reply's language) and posts it through ``CommentService.write_comment``: the
  same rules, timeline entry, first-response and reply hooks as a typed comment. An
  ``internal`` reply is an internal note, never shown to the customer.
- The shipped examples (``caseapi.replies.shipped``) are installed the first time
  the service is used in a process, once per database (by key); deleting marks the
  row deleted so an example staff removed stays removed.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.audit import service as audit
from caseapi.audit.enums import AuditAction
from caseapi.auth.principal import Principal
from caseapi.cases import store as case_store
from caseapi.cases.models import Case
from caseapi.clock import Clock
from caseapi.comments.models import Comment, Visibility
from caseapi.comments.service import CommentService
from caseapi.core.database import session_scope
from caseapi.customers import repository as customer_repository
from caseapi.customers.contacts import customer_zone
from caseapi.replies import repository
from caseapi.replies.errors import ReplyNotFoundError
from caseapi.replies.models import CannedReply
from caseapi.replies.render import CaseFacts, check_template, fill
from caseapi.replies.schemas import ReplyCreate, ReplyPreview, ReplyUpdate
from caseapi.replies.shipped import SHIPPED

SYSTEM_ACTOR = "system"


class ReplyService:
    """Keeps the canned replies and sends them on cases."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        comments: CommentService,
    ) -> None:
        """Create the service.

        Args:
            sessionmaker: Session factory.
            clock: Source of the rows' times and of ``${now}``.
            comments: The comment path a sent reply goes through.
        """
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._comments = comments
        self._installed = False

    async def install_shipped(self) -> int:
        """Install the shipped examples this database never had; how many were added."""
        async with session_scope(self._sessionmaker, write=True) as session:
            have = await repository.shipped_keys(session)
            now = self._clock.now()
            added = [
                CannedReply(
                    title=s.title,
                    body=s.body,
                    language=s.language,
                    visibility=s.visibility,
                    shipped_key=s.key,
                    created_at=now,
                    updated_at=now,
                    updated_by=SYSTEM_ACTOR,
                )
                for s in SHIPPED
                if s.key not in have
            ]
            session.add_all(added)
            try:
                await session.commit()
            except IntegrityError:
                # Another process installed them at the same moment: theirs stand.
                await session.rollback()
                return 0
        self._installed = True
        return len(added)

    async def _ready(self) -> None:
        if not self._installed:
            await self.install_shipped()

    async def list_replies(self) -> list[CannedReply]:
        """Every reply not deleted."""
        await self._ready()
        async with session_scope(self._sessionmaker) as session:
            return await repository.list_replies(session)

    async def get_reply(self, reply_id: int) -> CannedReply:
        """Reply ``reply_id``.

        Raises:
            ReplyNotFoundError: None (or deleted).
        """
        await self._ready()
        async with session_scope(self._sessionmaker) as session:
            return await self._get(session, reply_id)

    @staticmethod
    async def _get(session: AsyncSession, reply_id: int) -> CannedReply:
        row = await repository.get_reply(session, reply_id)
        if row is None:
            raise ReplyNotFoundError(reply_id)
        return row

    async def create(self, *, principal: Principal, body: ReplyCreate) -> CannedReply:
        """Save a new reply.

        Raises:
            ReplyTemplateError: An unknown placeholder or bad ``$`` syntax.
        """
        check_template("title", body.title)
        check_template("body", body.body)
        await self._ready()
        async with session_scope(self._sessionmaker, write=True) as session:
            now = self._clock.now()
            row = CannedReply(
                title=body.title,
                body=body.body,
                language=body.language.value,
                visibility=body.visibility.value,
                created_at=now,
                updated_at=now,
                updated_by=principal.actor,
            )
            session.add(row)
            await session.flush()
            await self._audit(session, AuditAction.REPLY_CREATE, row, fields=["*"])
            await session.commit()
            return row

    async def update(
        self, *, principal: Principal, reply_id: int, body: ReplyUpdate
    ) -> CannedReply:
        """Change the given fields of reply ``reply_id``.

        Raises:
            ReplyNotFoundError: None (or deleted).
            ReplyTemplateError: An unknown placeholder or bad ``$`` syntax.
        """
        if body.title is not None:
            check_template("title", body.title)
        if body.body is not None:
            check_template("body", body.body)
        await self._ready()
        async with session_scope(self._sessionmaker, write=True) as session:
            row = await self._get(session, reply_id)
            changed = body.model_dump(exclude_none=True)
            for name, value in changed.items():
                setattr(row, name, str(value))
            row.updated_at = self._clock.now()
            row.updated_by = principal.actor
            await self._audit(session, AuditAction.REPLY_UPDATE, row, fields=sorted(changed))
            await session.commit()
            return row

    async def delete(self, *, reply_id: int) -> None:
        """Delete reply ``reply_id`` (marked; a shipped one is not installed again).

        Raises:
            ReplyNotFoundError: None (or deleted already).
        """
        await self._ready()
        async with session_scope(self._sessionmaker, write=True) as session:
            row = await self._get(session, reply_id)
            row.deleted_at = self._clock.now()
            await self._audit(session, AuditAction.REPLY_DELETE, row, fields=[])
            await session.commit()

    async def _audit(
        self, session: AsyncSession, action: AuditAction, row: CannedReply, *, fields: list[str]
    ) -> None:
        # Which fields changed, never the texts (they may quote customers).
        await audit.record(
            session,
            action,
            at=self._clock.now(),
            target_id=str(row.id),
            details={"reply_id": row.id, "fields": fields, "shipped_key": row.shipped_key},
        )

    async def _render(self, session: AsyncSession, case: Case, row: CannedReply) -> str:
        customer = None
        if case.customer_id is not None:
            customer = await customer_repository.get_customer(session, customer_id=case.customer_id)
        assignee = case.assignee.partition(":")[2] or case.assignee if case.assignee else None
        facts = CaseFacts(
            values={
                "ref": case.ref,
                "summary": case.summary,
                "status": case.status.value,
                "priority": case.priority.value,
                "type": case.type.value,
                "customer_name": customer.name if customer is not None else case.customer_id,
                "site": case.site,
                "service_id": case.service_id,
                "ntu_id": case.ntu_id,
                "outage_start": case.outage_start,
                "detected_at": case.detected_at,
                "restored_at": case.restored_at,
                "etr": case.etr,
                "waiting_since": case.waiting_since,
                "auto_close_at": case.auto_close_due_at,
                "assignee_name": assignee,
                "now": self._clock.now(),
            },
            zone=customer_zone(customer),
        )
        return fill(row.body, facts, language=row.language)

    async def preview(self, *, principal: Principal, ref: str, reply_id: int) -> ReplyPreview:
        """Reply ``reply_id`` filled with case ``ref``'s fields (nothing is written).

        Raises:
            CaseNotFoundError: No such case.
            ReplyNotFoundError: No such reply.
        """
        await self._ready()
        async with session_scope(self._sessionmaker) as session:
            case = await case_store.case_for(session, principal, ref)
            row = await self._get(session, reply_id)
            text = await self._render(session, case, row)
            return ReplyPreview(
                reply_id=row.id,
                ref=case.ref,
                language=row.language,
                visibility=Visibility(row.visibility),
                body=text,
            )

    async def send(self, *, principal: Principal, ref: str, reply_id: int) -> Comment:
        """Post reply ``reply_id`` on case ``ref`` as a comment of its visibility.

        Raises:
            CaseNotFoundError: No such case.
            ReplyNotFoundError: No such reply.
        """
        await self._ready()
        async with session_scope(self._sessionmaker, write=True) as session:
            case = await case_store.case_for(session, principal, ref, lock=True)
            row = await self._get(session, reply_id)
            text = await self._render(session, case, row)
            visibility = Visibility(row.visibility)
            comment, copies = await self._comments.write_comment(
                session, case=case, principal=principal, body=text, visibility=visibility
            )
            await audit.record(
                session,
                AuditAction.CASE_COMMENT,
                at=comment.created_at,
                target_id=case.ref,
                customer_id=case.customer_id,
                details={
                    "comment_id": comment.id,
                    "visibility": visibility,
                    "linked_cases": copies,
                    "reply_id": row.id,
                },
            )
            await session.commit()
            return comment
