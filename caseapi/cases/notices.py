"""What customers are told about their cases, through the notification outbox.

The case side decides: ``on_case_event`` maps a timeline entry to the notification it
implies (opened, a public staff update, an ETR set, solved, RFO published, closed;
each carries the case's current ETR) and enqueues it in the caller's transaction;
``store.record_event`` calls it for every entry, so no writer of the timeline can
forget. ``import_reminders`` is the ``OutboxSource`` that turns the lifecycle's own
outbox (``case_notifications``: waiting-customer reminders) into notifications on
every dispatcher pass.

Cases without a customer and cases flagged ``no_support`` (expired or unpaid
contracts) tell nobody.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.cases.models import Case, CaseEvent, CaseNotification
from caseapi.notifications.enums import NotificationKind
from caseapi.notifications.models import Notification
from caseapi.notifications.outbox import enqueue, outbox_row
from caseapi.notifications.render import CASE_FIELDS

K = NotificationKind

#: The case's own fields in every message: what the customer may see of a case
#: (``ref`` is added first, ``at`` per message).
_CASE_SNAPSHOT: Final = tuple(name for name in CASE_FIELDS if name not in ("ref", "at"))


def case_facts(case: Case) -> dict[str, Any]:
    """The customer-visible snapshot of ``case`` that every case message carries."""
    facts: dict[str, Any] = {"ref": case.ref}
    for name in _CASE_SNAPSHOT:
        value = getattr(case, name)
        facts[name] = value.value if hasattr(value, "value") else value
    return facts


def kind_for_event(event: CaseEvent) -> NotificationKind | None:
    """The notification a timeline entry implies, if any."""
    kind = str(event.kind)
    data = event.data or {}
    if kind == "opened":
        return K.CASE_OPENED
    if kind == "comment_added":
        public = data.get("visibility") == "public" and data.get("author_role") != "customer"
        return K.PUBLIC_UPDATE if public else None
    if kind == "rfo_published":
        return K.RFO_PUBLISHED
    if kind == "etr_set":
        return K.ETR_UPDATED
    if kind == "closed":
        return K.CASE_CLOSED
    if data.get("to") == "solved":
        return K.CASE_SOLVED
    # reminder_sent: the lifecycle writes waiting_customer_reminder to its own
    # outbox (case_notifications), which import_reminders feeds to the dispatcher.
    return None


async def on_case_event(session: AsyncSession, *, case: Case, event: CaseEvent) -> None:
    """Enqueue the notification implied by timeline entry ``event`` of ``case``."""
    row = notification_for(case=case, event=event)
    if row is not None:
        session.add(row)
        await session.flush()


def notification_for(*, case: Case, event: CaseEvent) -> Notification | None:
    """The outbox row timeline entry ``event`` of ``case`` implies, if any (unsaved:
    the caller adds it in the transaction of the entry)."""
    kind = kind_for_event(event)
    if kind is None or case.customer_id is None or case.no_support:
        return None
    data = case_facts(case)
    data["at"] = event.at
    extra = event.data or {}
    if kind is K.PUBLIC_UPDATE:
        data["body"] = extra.get("body", "")
        data["visibility"] = "public"
    elif kind is K.ETR_UPDATED:
        data["previous_etr"] = extra.get("previous")
        data["note"] = extra.get("note", "")
    elif kind is K.RFO_PUBLISHED:
        data["version"] = extra.get("version", 1)
        data["correction"] = bool(extra.get("correction", False))
    elif kind is K.CASE_CLOSED:
        data["status"] = extra.get("to", data["status"])
        data["closed_at"] = data.get("closed_at") or event.at
    elif kind is K.CASE_SOLVED:
        data["status"] = "solved"
        data["restored_at"] = extra.get("restored_at") or data["restored_at"]
        data["monitoring_until"] = extra.get("monitoring_until") or data["monitoring_until"]
    return outbox_row(
        case_id=case.id, customer_id=case.customer_id, kind=kind, data=data, at=event.at
    )


async def import_reminders(session: AsyncSession, *, now: datetime, limit: int) -> int:
    """Turn unsent rows of the lifecycle's ``case_notifications`` into outbox rows.

    ``waiting_customer_reminder`` becomes a notification; ``case_auto_closed`` is
    consumed without a message (the ``closed`` timeline entry sends ``case_closed``).
    ``sent_at`` then means "handed to the dispatcher".
    """
    stmt = (
        select(CaseNotification, Case)
        .join(Case, Case.id == CaseNotification.case_id)
        .where(CaseNotification.sent_at.is_(None))
        .order_by(CaseNotification.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=CaseNotification)
    )
    rows = [(a, b) for a, b in (await session.execute(stmt)).all()]
    for legacy, case in rows:
        legacy.sent_at = now
        kind = str(legacy.kind)
        if (
            kind != NotificationKind.WAITING_CUSTOMER_REMINDER
            or case.customer_id is None
            or case.no_support
        ):
            continue
        data = {**case_facts(case), **(legacy.data or {}), "at": legacy.created_at}
        await enqueue(
            session,
            case_id=case.id,
            customer_id=case.customer_id,
            kind=NotificationKind.WAITING_CUSTOMER_REMINDER,
            data=data,
            at=legacy.created_at,
        )
    await session.flush()
    return len(rows)
