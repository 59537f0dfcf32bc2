"""SQL for comments. Callers own the session and the transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.comments.models import Comment, Visibility


async def add_comment(session: AsyncSession, *, comment: Comment) -> Comment:
    """Insert ``comment`` and flush (its id is known afterwards)."""
    session.add(comment)
    await session.flush()
    return comment


def readable(*, customer: bool) -> tuple[Visibility, ...]:
    """The comments a reader may see: a customer the public ones, staff every one."""
    return (Visibility.PUBLIC,) if customer else (Visibility.PUBLIC, Visibility.INTERNAL)


async def list_comments(
    session: AsyncSession, *, case_id: int, visibilities: Sequence[Visibility]
) -> list[Comment]:
    """Return the comments of one case with one of ``visibilities``, oldest first."""
    stmt = (
        select(Comment)
        .where(Comment.case_id == case_id, Comment.visibility.in_([v.value for v in visibilities]))
        .order_by(Comment.id)
    )
    return list((await session.execute(stmt)).scalars())
