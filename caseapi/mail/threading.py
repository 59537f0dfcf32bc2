"""One thread per case: the Message-IDs a case's mails carry and refer to.

Every mail we send about a case answers the thread's root (``In-Reply-To``: the
case's first mail, sent or received) and lists the root and the newest mails in
``References`` (at most ``MAX_REFERENCES``), so the customer's mail client shows
one conversation per case. A reply from the customer names those ids, which
``case_for_message_ids`` maps back to the case. Keyword-only; callers own the session.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.mail.models import MESSAGE_ID_LENGTH, MailMessage

#: ``References`` lists the root and the newest ids up to this many (RFC 5322 3.6.4
#: allows trimming; long lists break some clients).
MAX_REFERENCES: Final = 10
DIRECTIONS: Final = frozenset({"in", "out"})


async def record_message_id(
    session: AsyncSession, *, case_id: int, message_id: str, direction: str, at: datetime
) -> None:
    """Remember that ``message_id`` belongs to ``case_id`` (a second call changes nothing).

    Raises:
        ValueError: ``direction`` is not ``in`` or ``out``, or ``message_id`` is not
            ``<...>`` of at most 998 characters.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'in' or 'out', not {direction!r}")
    if not (message_id.startswith("<") and message_id.endswith(">")) or not (
        2 < len(message_id) <= MESSAGE_ID_LENGTH
    ):
        raise ValueError(f"not a Message-ID: {message_id[:80]!r}")
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(MailMessage).values(
        message_id=message_id, case_id=case_id, direction=direction, created_at=at
    )
    # Retries and several recipients of one mail record the same id: keep the first.
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["message_id"]))


async def case_for_message_ids(session: AsyncSession, message_ids: Sequence[str]) -> int | None:
    """The case of the newest known id among ``message_ids`` (``None``: none is ours)."""
    wanted = [m for m in dict.fromkeys(message_ids) if m]
    if not wanted:
        return None
    stmt = (
        select(MailMessage.case_id)
        .where(MailMessage.message_id.in_(wanted))
        .order_by(MailMessage.created_at.desc(), MailMessage.id.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def thread_headers(
    session: AsyncSession, *, case_id: int
) -> tuple[str | None, tuple[str, ...]]:
    """``(In-Reply-To, References)`` for the next mail of ``case_id``.

    ``(None, ())`` while the case has no mail yet (the next one is the root).
    """
    order = (MailMessage.created_at, MailMessage.id)
    root = (
        await session.execute(
            select(MailMessage.message_id)
            .where(MailMessage.case_id == case_id)
            .order_by(*order)
            .limit(1)
        )
    ).scalar_one_or_none()
    if root is None:
        return None, ()
    newest = (
        await session.execute(
            select(MailMessage.message_id)
            .where(MailMessage.case_id == case_id, MailMessage.message_id != root)
            .order_by(*(c.desc() for c in order))
            .limit(MAX_REFERENCES - 1)
        )
    ).scalars()
    return root, (root, *reversed(list(newest)))


def make_message_id(event_id: str, sender: str) -> str:
    """The ``Message-ID`` of every mail about outbox row ``event_id`` (retries included)."""
    domain = sender.rpartition("@")[2] or "localhost"
    return f"<{event_id}@{domain}>"


def extend_thread(
    thread: tuple[str | None, tuple[str, ...]], message_id: str
) -> tuple[str | None, tuple[str, ...]]:
    """The thread headers after ``message_id`` joined ``thread`` (pure)."""
    root, references = thread
    if message_id in references:
        return thread
    if root is None:
        return message_id, (message_id,)
    tail = (*references[1:], message_id)[-(MAX_REFERENCES - 1) :]
    return root, (root, *tail)
