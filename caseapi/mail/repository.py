"""Queries of the mail ingest: ``inbound_mails``, threads, and the deliveries a bounce fails.

Keyword-only; callers own the session and its transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.cases.models import Case
from caseapi.mail.inbound import InboundMail, InboundStatus
from caseapi.mail.threading import case_for_message_ids as case_by_thread
from caseapi.notifications.enums import Channel, DeliveryState
from caseapi.notifications.models import Notification, NotificationDelivery


async def add(session: AsyncSession, *, row: InboundMail) -> InboundMail:
    """Insert ``row`` now (a lost race for its unique keys raises ``IntegrityError``)."""
    session.add(row)
    await session.flush()
    return row


async def by_uid(session: AsyncSession, *, mailbox: str, uid: int) -> InboundMail | None:
    stmt = select(InboundMail).where(InboundMail.mailbox == mailbox, InboundMail.uid == uid)
    return (await session.execute(stmt)).scalar_one_or_none()


async def by_dedup_key(session: AsyncSession, *, key: str) -> InboundMail | None:
    stmt = select(InboundMail).where(InboundMail.dedup_key == key)
    return (await session.execute(stmt)).scalar_one_or_none()


async def get(session: AsyncSession, *, mail_id: int, lock: bool = False) -> InboundMail | None:
    stmt = select(InboundMail).where(InboundMail.id == mail_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def count_recent(
    session: AsyncSession, *, sender: str, since: datetime, exclude_id: int
) -> int:
    """Mails from ``sender`` received after ``since`` (duplicates do not count)."""
    stmt = select(func.count()).where(
        InboundMail.sender == sender,
        InboundMail.received_at > since,
        InboundMail.status != InboundStatus.DUPLICATE.value,
        InboundMail.id != exclude_id,
    )
    return int((await session.execute(stmt)).scalar_one())


def event_ids(message_ids: Sequence[str]) -> list[str]:
    """The outbox event ids in our Message-IDs (``<event-id@domain>``)."""
    found = []
    for message_id in message_ids:
        local = message_id.strip("<>").partition("@")[0]
        if len(local) == 36:  # a UUID, as ``caseapi.notifications.outbox`` makes them
            found.append(local)
    return found


async def case_for_message_ids(session: AsyncSession, message_ids: Sequence[str]) -> int | None:
    """The case a reply belongs to by its thread: a Message-ID of a case's mail
    (``mail_messages``), else of one of our notifications not yet recorded there."""
    wanted = [m for m in dict.fromkeys(message_ids) if m]
    if not wanted:
        return None
    case_id = await case_by_thread(session, wanted)
    if case_id is not None:
        return case_id
    ids = event_ids(wanted)
    if not ids:
        return None
    stmt = (
        select(Notification.case_id)
        .where(Notification.event_id.in_(ids), Notification.case_id.is_not(None))
        .order_by(Notification.id.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def fail_deliveries(
    session: AsyncSession,
    *,
    message_ids: Sequence[str],
    recipients: Sequence[str],
    error: str,
    now: datetime,
) -> list[int]:
    """Mark failed the e-mail deliveries a bounce reports; return their ids.

    The deliveries of the notifications behind ``message_ids`` (to ``recipients``
    when the report names them, else all of them) that are not failed already.
    """
    ids = event_ids(message_ids)
    if not ids:
        return []
    stmt = (
        select(NotificationDelivery)
        .join(Notification, Notification.id == NotificationDelivery.notification_id)
        .where(
            Notification.event_id.in_(ids),
            NotificationDelivery.channel == Channel.EMAIL.value,
            NotificationDelivery.state != DeliveryState.FAILED.value,
        )
        .order_by(NotificationDelivery.id)
        .with_for_update()
    )
    deliveries = list((await session.execute(stmt)).scalars())
    wanted = {r.lower() for r in recipients}
    failed = []
    for delivery in deliveries:
        if wanted and delivery.target.lower() not in wanted:
            continue
        delivery.state = DeliveryState.FAILED.value
        delivery.last_error = error[:1000]
        delivery.last_attempt_at = now
        failed.append(delivery.id)
    await session.flush()
    return failed


async def case_of_delivery(session: AsyncSession, delivery_id: int) -> int | None:
    stmt = (
        select(Notification.case_id)
        .join(NotificationDelivery, NotificationDelivery.notification_id == Notification.id)
        .where(NotificationDelivery.id == delivery_id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


@dataclass(frozen=True, slots=True)
class HeldFilters:
    """What the held list matches (``status`` held unless told otherwise)."""

    status: str = InboundStatus.HELD.value
    reason: str | None = None
    sender: str | None = None


async def list_mails(
    session: AsyncSession, *, filters: HeldFilters, before_id: int | None, limit: int
) -> list[InboundMail]:
    """Mails matching ``filters``, newest first, below ``before_id``."""
    stmt = select(InboundMail).where(*_conditions(filters))
    if before_id is not None:
        stmt = stmt.where(InboundMail.id < before_id)
    stmt = stmt.order_by(InboundMail.id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def count_mails(session: AsyncSession, *, filters: HeldFilters) -> int:
    stmt = select(func.count()).select_from(InboundMail).where(*_conditions(filters))
    return int((await session.execute(stmt)).scalar_one())


def _conditions(filters: HeldFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [InboundMail.status == filters.status]
    if filters.reason is not None:
        conditions.append(InboundMail.reason == filters.reason)
    if filters.sender is not None:
        conditions.append(InboundMail.sender == filters.sender.strip().lower())
    return conditions


async def case_refs(session: AsyncSession, *, case_ids: set[int | None]) -> dict[int, str]:
    """Case id -> reference for ``case_ids`` (``None`` ignored)."""
    wanted = [i for i in case_ids if i is not None]
    if not wanted:
        return {}
    rows = await session.execute(select(Case.id, Case.ref).where(Case.id.in_(wanted)))
    return {case_id: ref for case_id, ref in rows.all()}
