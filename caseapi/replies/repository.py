"""SQL for canned replies. Callers own the session and the transaction."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.replies.models import CannedReply


async def list_replies(session: AsyncSession) -> list[CannedReply]:
    """The replies not deleted, by language, title and id."""
    stmt = (
        select(CannedReply)
        .where(CannedReply.deleted_at.is_(None))
        .order_by(CannedReply.language, CannedReply.title, CannedReply.id)
    )
    return list((await session.execute(stmt)).scalars())


async def get_reply(session: AsyncSession, reply_id: int) -> CannedReply | None:
    """The reply ``reply_id`` unless deleted."""
    row = await session.get(CannedReply, reply_id)
    return None if row is None or row.deleted_at is not None else row


async def shipped_keys(session: AsyncSession) -> set[str]:
    """The shipped examples ever installed (deleted ones too)."""
    stmt = select(CannedReply.shipped_key).where(CannedReply.shipped_key.is_not(None))
    return {key for key in (await session.execute(stmt)).scalars() if key is not None}
