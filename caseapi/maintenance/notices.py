"""Telling customers about maintenance, through the notification outbox.

Every notice is enqueued in the caller's transaction (``caseapi.notifications.outbox``),
so it exists if and only if the change it reports does. Each customer with at least
one NTU the window covers gets its own message, listing only its own services and
sites; customers with nothing covered are never told.

- ``announce`` / ``complete`` / ``cancel`` are called by ``MaintenanceService``.
- ``notify_due`` is the time-driven part (started notices and reminders), run
  periodically by the NMS runtime. The window rows record when each went out
  (``started_notified_at``, ``reminded_at``), so a repeated or overlapping call
  never sends a notice twice; rows are locked while being handled.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.maintenance import repository
from caseapi.maintenance.models import MaintenanceWindow
from caseapi.notifications.enums import NotificationKind
from caseapi.notifications.outbox import enqueue
from caseapi.ntus.models import Ntu

K = NotificationKind


def facts(window: MaintenanceWindow) -> dict[str, Any]:
    """The customer-visible facts every maintenance notice carries."""
    return {
        "maintenance_id": window.ref,
        "title": window.title,
        "maintenance_kind": window.kind,
        "starts_at": window.starts_at,
        "ends_at": window.ends_at,
        "expected_impact": window.description or "not stated",
    }


async def notify(
    session: AsyncSession,
    *,
    window: MaintenanceWindow,
    kind: NotificationKind,
    at: datetime,
    extra: Mapping[str, Any] | None = None,
) -> int:
    """Enqueue ``kind`` about ``window`` for each affected customer; returns how many."""
    affected = await repository.affected_customers(session, window=window)
    if not affected:
        return 0
    ids = sorted({ntu_id for ntus in affected.values() for ntu_id in ntus})
    rows = await session.execute(select(Ntu.id, Ntu.service_id, Ntu.site).where(Ntu.id.in_(ids)))
    details = {row.id: (row.service_id, row.site) for row in rows}
    base = facts(window)
    for customer_id, ntus in sorted(affected.items()):
        own = [details[n] for n in ntus if n in details]
        data = {
            **base,
            "services": sorted({service for service, _ in own if service}),
            "sites": sorted({site for _, site in own if site}),
            "at": at,
            **(extra or {}),
        }
        await enqueue(session, case_id=None, customer_id=customer_id, kind=kind, data=data, at=at)
    return len(affected)


async def announce(session: AsyncSession, *, window: MaintenanceWindow, at: datetime) -> int:
    """``maintenance_announced`` to every affected customer."""
    return await notify(session, window=window, kind=K.MAINTENANCE_ANNOUNCED, at=at)


async def cancelled(session: AsyncSession, *, window: MaintenanceWindow, at: datetime) -> int:
    """``maintenance_cancelled`` to every customer the window would have affected."""
    return await notify(session, window=window, kind=K.MAINTENANCE_CANCELLED, at=at)


async def completed(session: AsyncSession, *, window: MaintenanceWindow, at: datetime) -> int:
    """``maintenance_completed`` with the real impact (the window as it ran)."""
    extra = {
        "completed_at": window.completed_at or at,
        "impact_start": window.starts_at,
        "impact_end": window.ends_at,
        "actual_impact": window.actual_impact,
    }
    return await notify(session, window=window, kind=K.MAINTENANCE_COMPLETED, at=at, extra=extra)


async def notify_due(
    session: AsyncSession,
    *,
    since: datetime,
    until: datetime,
    reminder_before: timedelta = timedelta(hours=24),
) -> dict[str, int]:
    """Enqueue the started notices and reminders due at ``until``; the caller commits.

    - ``maintenance_started`` for each live window whose start fell in
      ``(since, until]`` and whose start was not notified yet.
    - ``maintenance_reminder`` for each live window starting in
      ``(until, until + reminder_before]`` not reminded yet, unless it was announced
      less than ``reminder_before`` before its start (the announcement was the notice).

    Returns the number of windows handled per notice kind.
    """
    live = MaintenanceWindow.cancelled_at.is_(None)
    started_stmt = (
        select(MaintenanceWindow)
        .where(
            live,
            MaintenanceWindow.completed_at.is_(None),
            MaintenanceWindow.started_notified_at.is_(None),
            MaintenanceWindow.starts_at > since,
            MaintenanceWindow.starts_at <= until,
        )
        .order_by(MaintenanceWindow.starts_at, MaintenanceWindow.id)
        .with_for_update(skip_locked=True)
    )
    started = list((await session.execute(started_stmt)).scalars())
    for window in started:
        await notify(session, window=window, kind=K.MAINTENANCE_STARTED, at=window.starts_at)
        window.started_notified_at = until
    reminder_stmt = (
        select(MaintenanceWindow)
        .where(
            live,
            MaintenanceWindow.reminded_at.is_(None),
            MaintenanceWindow.starts_at > until,
            MaintenanceWindow.starts_at <= until + reminder_before,
        )
        .order_by(MaintenanceWindow.starts_at, MaintenanceWindow.id)
        .with_for_update(skip_locked=True)
    )
    reminded = 0
    for window in (await session.execute(reminder_stmt)).scalars():
        window.reminded_at = until
        if window.starts_at - window.created_at <= reminder_before:
            continue  # announced inside the reminder period: no separate reminder
        await notify(session, window=window, kind=K.MAINTENANCE_REMINDER, at=until)
        reminded += 1
    await session.flush()
    return {"started": len(started), "reminded": reminded}
