"""Producing outbox rows, in the caller's transaction.

``enqueue`` is what domain code calls next to the change it reports (same session,
same commit: the message exists if and only if the change does). ``on_case_event``
maps a case timeline entry to the notification it implies, so one call in
``caseapi.cases.repository.add_event`` covers every case kind. ``backlog`` counts
deliveries by state for metrics and the NOC.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.cases.models import Case, CaseEvent
from caseapi.notifications.enums import DeliveryState, NotificationKind
from caseapi.notifications.models import Notification, NotificationDelivery

K = NotificationKind

_CASE_SNAPSHOT = (
    "status",
    "priority",
    "summary",
    "site",
    "service_id",
    "ntu_id",
    "outage_start",
    "detected_at",
    "restored_at",
    "monitoring_until",
    "closed_at",
)


async def enqueue(
    session: AsyncSession,
    *,
    case_id: int | None,
    customer_id: str,
    kind: NotificationKind | str,
    data: Mapping[str, Any],
    at: datetime | None = None,
) -> None:
    """Add one notification to the outbox in the caller's transaction.

    Args:
        session: The session of the change being reported; the caller commits.
        case_id: The case it is about (``None`` for maintenance).
        customer_id: Who is told.
        kind: One of ``NotificationKind``.
        data: Facts for the templates (ISO or aware datetime values); only the
            customer-visible fields of ``kind`` are ever sent.
        at: When it happened (default: now).

    Raises:
        ValueError: Unknown kind, an internal comment, or data that is not JSON.
    """
    kind = NotificationKind(kind)
    if kind is K.PUBLIC_UPDATE and data.get("visibility", "public") != "public":
        raise ValueError("internal comments are never sent to customers")
    stored = json.loads(json.dumps(dict(data), default=_json_default))
    case_ref = stored.get("ref")
    if case_id is not None and case_ref is None:
        case = await session.get(Case, case_id)
        case_ref = case.ref if case is not None else None
    session.add(
        Notification(
            event_id=str(uuid.uuid4()),
            customer_id=customer_id,
            case_id=case_id,
            case_ref=case_ref,
            kind=kind.value,
            data=stored,
            created_at=at or datetime.now(UTC),
            expanded_at=None,
        )
    )
    await session.flush()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must be timezone-aware")
        return value.astimezone(UTC).isoformat()
    raise ValueError(f"not JSON-serialisable: {value!r}")


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
    if kind == "closed":
        return K.CASE_CLOSED
    if data.get("to") == "solved":
        return K.CASE_SOLVED
    # reminder_sent: the lifecycle writes waiting_customer_reminder to the legacy
    # outbox (case_notifications), which the dispatcher imports.
    return None


async def on_case_event(session: AsyncSession, *, case: Case, event: CaseEvent) -> None:
    """Enqueue the notification implied by timeline entry ``event`` of ``case``.

    Cases without a customer and cases flagged ``no_support`` (expired or unpaid
    contracts) tell nobody.
    """
    kind = kind_for_event(event)
    if kind is None or case.customer_id is None or case.no_support:
        return
    data = case_facts(case)
    data["at"] = event.at
    extra = event.data or {}
    if kind is K.PUBLIC_UPDATE:
        data["body"] = extra.get("body", "")
        data["visibility"] = "public"
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
    await enqueue(
        session, case_id=case.id, customer_id=case.customer_id, kind=kind, data=data, at=event.at
    )


async def backlog(session: AsyncSession) -> dict[str, int]:
    """Deliveries by state, plus ``new``: outbox rows not yet fanned out."""
    counts = {state.value: 0 for state in DeliveryState}
    rows = await session.execute(
        select(NotificationDelivery.state, func.count()).group_by(NotificationDelivery.state)
    )
    for state, count in rows.all():
        counts[state] = count
    counts["new"] = (
        await session.execute(select(func.count()).where(Notification.expanded_at.is_(None)))
    ).scalar_one()
    return counts
