"""SQL for attachments. Callers own the session and the transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from caseapi.attachments.models import Attachment


async def add_attachment(session: AsyncSession, *, attachment: Attachment) -> Attachment:
    """Insert ``attachment`` and flush (its id is known afterwards)."""
    session.add(attachment)
    await session.flush()
    return attachment


async def count_for_case(session: AsyncSession, *, case_id: int) -> int:
    """How many attachments case ``case_id`` holds."""
    stmt = select(func.count()).select_from(Attachment).where(Attachment.case_id == case_id)
    return int((await session.execute(stmt)).scalar_one())


async def list_for_case(
    session: AsyncSession, *, case_id: int, include_internal: bool
) -> list[Attachment]:
    """The attachments of one case (without their bytes), oldest first."""
    stmt = select(Attachment).where(Attachment.case_id == case_id).order_by(Attachment.id)
    if not include_internal:
        stmt = stmt.where(Attachment.internal.is_(False))
    return list((await session.execute(stmt)).scalars())


async def list_for_comments(
    session: AsyncSession, *, comment_ids: Sequence[int], include_internal: bool
) -> list[Attachment]:
    """The attachments carried by ``comment_ids`` (without their bytes), oldest first."""
    if not comment_ids:
        return []
    stmt = (
        select(Attachment)
        .where(Attachment.comment_id.in_(list(comment_ids)))
        .order_by(Attachment.id)
    )
    if not include_internal:
        stmt = stmt.where(Attachment.internal.is_(False))
    return list((await session.execute(stmt)).scalars())


async def get_with_bytes(
    session: AsyncSession, *, case_id: int, attachment_id: int
) -> Attachment | None:
    """Attachment ``attachment_id`` of case ``case_id``, its bytes loaded, or ``None``."""
    stmt = (
        select(Attachment)
        .where(Attachment.id == attachment_id, Attachment.case_id == case_id)
        .options(undefer(Attachment.data))
    )
    return (await session.execute(stmt)).scalar_one_or_none()
