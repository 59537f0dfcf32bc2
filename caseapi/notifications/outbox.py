"""Producing outbox rows, in the caller's transaction.

``enqueue`` is what domain code calls next to the change it reports (same session,
same commit: the message exists if and only if the change does); each domain decides
what it tells customers (the cases' rules are ``caseapi.cases.notices``).
``OutboxSource`` is how another domain's own outbox feeds this one, once per
dispatcher pass. ``backlog`` counts deliveries by state for metrics and the NOC.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.notifications.enums import DeliveryState, NotificationKind
from caseapi.notifications.models import Notification, NotificationDelivery

K = NotificationKind


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
        case_id: The case it is about (``None`` for maintenance); its reference is
            ``data["ref"]``.
        customer_id: Who is told.
        kind: One of ``NotificationKind``.
        data: Facts for the templates (ISO or aware datetime values); only the
            customer-visible fields of ``kind`` are ever sent.
        at: When it happened (default: now).

    Raises:
        ValueError: Unknown kind, an internal comment, or data that is not JSON.
    """
    session.add(outbox_row(case_id=case_id, customer_id=customer_id, kind=kind, data=data, at=at))
    await session.flush()


def outbox_row(
    *,
    case_id: int | None,
    customer_id: str,
    kind: NotificationKind | str,
    data: Mapping[str, Any],
    at: datetime | None = None,
) -> Notification:
    """The unsaved outbox row ``enqueue`` adds (same arguments, same checks), for a
    caller that adds many rows with one flush.

    Raises:
        ValueError: Unknown kind, an internal comment, or data that is not JSON.
    """
    kind = NotificationKind(kind)
    if kind is K.PUBLIC_UPDATE and data.get("visibility", "public") != "public":
        raise ValueError("internal comments are never sent to customers")
    stored = json.loads(json.dumps(dict(data), default=_json_default))
    return Notification(
        event_id=str(uuid.uuid4()),
        customer_id=customer_id,
        case_id=case_id,
        case_ref=stored.get("ref"),
        kind=kind.value,
        data=stored,
        created_at=at or datetime.now(UTC),
        expanded_at=None,
    )


class OutboxSource(Protocol):
    """Feeds another outbox into this one, in the dispatcher's transaction.

    Returns how many of its rows it handled (a full ``limit`` means: call again).
    """

    async def __call__(self, session: AsyncSession, *, now: datetime, limit: int) -> int: ...


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must be timezone-aware")
        return value.astimezone(UTC).isoformat()
    raise ValueError(f"not JSON-serialisable: {value!r}")


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
