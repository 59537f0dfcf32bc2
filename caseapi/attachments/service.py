"""Attachments: storing them for any channel, and the API's upload, list and download.

Rules:

- ``store`` is the one way an attachment comes to exist, for every channel (the
  API's upload, the mail ingest). It runs in the caller's write transaction:
  refuses a file over ``attachments.max_size`` (413 ``attachment_too_large``) and a
  case already holding ``attachments.max_per_case`` (409 ``too_many_attachments``,
  counted under the case's row lock), cleans the file name, records the declared
  content type normalized, the size and SHA-256, keeps the bytes in the row or in
  ``attachments.directory``, and writes an ``attachment_added`` timeline entry.
- ``internal`` follows the carrying comment's visibility. Without a comment, staff
  choose (``public`` by default); a customer's attachment is always public (asking
  for ``internal``: 403 ``forbidden``).
- Tenancy as for comments: another customer's case is 404 ``case_not_found``; an
  internal attachment is 404 ``attachment_not_found`` to a customer, and its
  timeline entry is hidden from customers (``data["visibility"]``) and holds no file
  name. A customer cannot attach to a finished case (409 ``case_closed``).
- An upload with ``comment`` text creates that comment (through
  ``CommentService.write_comment``: the same rules, timeline entry and reply hooks)
  carrying the file, in the same transaction; the audit row is ``case.attach``.
- Attachments are immutable: no update or delete here, triggers in the database.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.attachments import repository, storage
from caseapi.attachments.config import AttachmentSettings
from caseapi.attachments.errors import (
    AttachmentNotFoundError,
    AttachmentTooLargeError,
    TooManyAttachmentsError,
)
from caseapi.attachments.models import Attachment, AttachmentSource, Storage
from caseapi.attachments.names import normalize_content_type, sanitize_filename
from caseapi.audit import service as audit
from caseapi.audit.enums import AuditAction
from caseapi.auth.errors import PermissionDeniedError
from caseapi.auth.principal import Principal
from caseapi.cases import repository as case_repository
from caseapi.cases import store as case_store
from caseapi.cases.enums import CaseEventKind
from caseapi.cases.errors import CaseValidationError
from caseapi.clock import Clock
from caseapi.comments.errors import CommentRefusedError
from caseapi.comments.models import Visibility
from caseapi.comments.schemas import MAX_BODY
from caseapi.comments.service import CommentService
from caseapi.core.database import session_scope


@dataclass(frozen=True, slots=True)
class Download:
    """An attachment and its bytes (checked against the recorded SHA-256)."""

    attachment: Attachment
    data: bytes


class AttachmentService:
    """Stores attachments for every channel; uploads, lists and serves them for the API."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        settings: AttachmentSettings | None = None,
        comments: CommentService | None = None,
    ) -> None:
        """Create the service.

        Args:
            sessionmaker: Session factory of the case database.
            clock: Source of every attachment's timestamp.
            settings: Limits and storage (``attachments.*``); the defaults when omitted.
            comments: Writes the comment an upload may carry (built on the same
                sessionmaker and clock when omitted).
        """
        self._sessionmaker = sessionmaker
        self._clock = clock
        self.settings = settings or AttachmentSettings()
        self._comments = comments or CommentService(sessionmaker=sessionmaker, clock=clock)

    @property
    def max_size(self) -> int:
        """The largest file accepted, in bytes."""
        return int(self.settings.max_size)

    async def store(
        self,
        session: AsyncSession,
        *,
        case_id: int,
        comment_id: int | None,
        internal: bool,
        filename: str,
        content_type: str,
        data: bytes,
        actor: str,
        source: AttachmentSource = AttachmentSource.EMAIL,
        author_role: str | None = None,
    ) -> Attachment:
        """Store ``data`` as an attachment of case ``case_id`` in the caller's transaction.

        Locks the case row (again, if the caller already holds it) so that the count
        limit holds under concurrent uploads. The caller commits.

        Args:
            session: The caller's write session.
            case_id: The case's primary key.
            comment_id: The comment that carries the file, if any (the caller wrote it).
            internal: Support only (an internal note's file); customers never see it.
            filename: As received; cleaned here (``caseapi.attachments.names``).
            content_type: As declared; normalized here, never trusted for serving.
            data: The bytes (may be empty: a mail may carry an empty file).
            actor: Who attached it, as on the timeline (``engineer:alice``,
                ``customer:acme-noc``, the mail channel's actor).
            source: The channel. The mail ingest, the one caller outside this
                package, leaves the default.
            author_role: The uploader's role for the timeline entry, if known.

        Raises:
            AttachmentTooLargeError: ``data`` is over ``attachments.max_size``.
            TooManyAttachmentsError: The case holds ``attachments.max_per_case``.
            ValueError: No case ``case_id`` (a caller's bug: it found the case).
        """
        if len(data) > self.max_size:
            raise AttachmentTooLargeError(max_size=self.max_size)
        case = await case_repository.lock_case_by_id(session, case_id=case_id)
        if case is None:
            raise ValueError(f"no case with id {case_id}")
        count = await repository.count_for_case(session, case_id=case_id)
        if count >= self.settings.max_per_case:
            raise TooManyAttachmentsError(ref=case.ref, max_per_case=self.settings.max_per_case)
        now = self._clock.now()
        sha256 = hashlib.sha256(data).hexdigest()
        directory = self.settings.directory
        if directory is not None:
            # The file first: a committed row never names a missing file.
            await storage.write_file(directory, storage.stored_name(sha256), data)
        attachment = await repository.add_attachment(
            session,
            attachment=Attachment(
                case_id=case_id,
                comment_id=comment_id,
                internal=internal,
                filename=sanitize_filename(filename),
                content_type=normalize_content_type(content_type),
                size=len(data),
                sha256=sha256,
                storage=Storage.DIRECTORY if directory is not None else Storage.DATABASE,
                data=None if directory is not None else data,
                stored_name=storage.stored_name(sha256) if directory is not None else None,
                created_at=now,
                uploaded_by=actor,
                source=source.value,
            ),
        )
        visibility = Visibility.INTERNAL if internal else Visibility.PUBLIC
        entry: dict[str, object] = {
            "attachment_id": attachment.id,
            "visibility": visibility.value,
            "comment_id": comment_id,
            "size": attachment.size,
            "content_type": attachment.content_type,
            "source": attachment.source,
        }
        if author_role is not None:
            entry["author_role"] = author_role
        if not internal:
            # As with comments: an internal entry holds no text a leak could show.
            entry["filename"] = attachment.filename
        await case_store.record_event(
            session,
            case=case,
            at=now,
            kind=CaseEventKind.ATTACHMENT_ADDED,
            actor=actor,
            data=entry,
        )
        return attachment

    async def check_upload(self, *, principal: Principal, ref: str) -> None:
        """Refuse an upload that cannot succeed before its body is read.

        ``upload`` checks all of it again under the case's lock.

        Raises:
            CaseNotFoundError: No such case, or another customer's.
            CommentRefusedError: A customer on a finished case.
            TooManyAttachmentsError: The case is full.
        """
        async with session_scope(self._sessionmaker) as session:
            case = await case_store.case_for(session, principal, ref)
            if principal.is_customer and case.status.is_terminal:
                raise CommentRefusedError(ref, case.status.value)
            count = await repository.count_for_case(session, case_id=case.id)
        if count >= self.settings.max_per_case:
            raise TooManyAttachmentsError(ref=ref, max_per_case=self.settings.max_per_case)

    async def upload(
        self,
        *,
        principal: Principal,
        ref: str,
        filename: str,
        content_type: str | None,
        data: bytes,
        visibility: str | None = None,
        comment: str | None = None,
    ) -> Attachment:
        """Attach a file to case ``ref`` through the API, maybe with a comment carrying it.

        Args:
            principal: The caller.
            ref: The case.
            filename: As the client named it.
            content_type: As the client declared it.
            data: The bytes (at most ``max_size``: the upload reader stops there).
            visibility: ``public`` (the default) or ``internal`` (staff only).
            comment: Text of a comment to carry the file; none when empty.

        Raises:
            CaseValidationError: An empty file, a bad ``visibility`` or ``comment``.
            PermissionDeniedError: A customer asking for ``internal``.
            CaseNotFoundError: No such case, or another customer's.
            CommentRefusedError: A customer on a finished case.
            AttachmentTooLargeError, TooManyAttachmentsError: The limits.
        """
        if not data:
            raise CaseValidationError("file", "is empty")
        chosen = _visibility(visibility)
        if principal.is_customer and chosen is not Visibility.PUBLIC:
            raise PermissionDeniedError("customers may only attach public files")
        if comment is not None and len(comment) > MAX_BODY:
            raise CaseValidationError("comment", f"longer than {MAX_BODY} characters")
        async with session_scope(self._sessionmaker, write=True) as session:
            case = await case_store.case_for(session, principal, ref, lock=True)
            if principal.is_customer and case.status.is_terminal:
                raise CommentRefusedError(ref, case.status.value)
            carrier = None
            if comment:
                carrier, _ = await self._comments.write_comment(
                    session, case=case, principal=principal, body=comment, visibility=chosen
                )
            attachment = await self.store(
                session,
                case_id=case.id,
                comment_id=carrier.id if carrier is not None else None,
                internal=chosen is Visibility.INTERNAL,
                filename=filename,
                content_type=content_type or "",
                data=data,
                actor=principal.actor,
                source=AttachmentSource.API,
                author_role=principal.role.value,
            )
            # Facts only: never the file name (free text) or the comment.
            await audit.record(
                session,
                AuditAction.CASE_ATTACH,
                at=attachment.created_at,
                target_id=case.ref,
                customer_id=case.customer_id,
                details={
                    "attachment_id": attachment.id,
                    "comment_id": attachment.comment_id,
                    "visibility": chosen,
                    "size": attachment.size,
                    "content_type": attachment.content_type,
                },
            )
            await session.commit()
            return attachment

    async def list_attachments(self, *, principal: Principal, ref: str) -> list[Attachment]:
        """The attachments of case ``ref`` the caller may see, oldest first.

        Raises:
            CaseNotFoundError: No such case, or another customer's.
        """
        async with session_scope(self._sessionmaker) as session:
            case = await case_store.case_for(session, principal, ref)
            return await repository.list_for_case(
                session, case_id=case.id, include_internal=not principal.is_customer
            )

    async def download(self, *, principal: Principal, ref: str, attachment_id: int) -> Download:
        """Attachment ``attachment_id`` of case ``ref`` with its bytes.

        Raises:
            CaseNotFoundError: No such case, or another customer's.
            AttachmentNotFoundError: No such attachment on the case, or an internal
                one asked for by a customer.
            AttachmentUnavailableError: Its bytes are missing or altered.
        """
        async with session_scope(self._sessionmaker) as session:
            case = await case_store.case_for(session, principal, ref)
            attachment = await repository.get_with_bytes(
                session, case_id=case.id, attachment_id=attachment_id
            )
        if attachment is None or (principal.is_customer and attachment.internal):
            raise AttachmentNotFoundError(ref, attachment_id)
        data = await storage.read_bytes(attachment, self.settings.directory)
        return Download(attachment=attachment, data=data)


def _visibility(value: str | None) -> Visibility:
    if value is None or value == "":
        return Visibility.PUBLIC
    try:
        return Visibility(value)
    except ValueError:
        raise CaseValidationError("visibility", "must be 'public' or 'internal'") from None
