"""Queries for maintenance windows, and the detector's contract ``active_coverage``.

``active_coverage`` is on the detector's hot path (called every cycle for a fleet
of 10,000 NTUs): one query for the windows active at ``at``, at most one more for
the four inventory columns that customer, service and node scopes need (none when
every active window names NTUs only), and the tree walk in Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.core.counters import next_in_year
from caseapi.customers.models import Customer
from caseapi.maintenance.enums import MaintenanceBehaviour, MaintenanceState
from caseapi.maintenance.models import MaintenanceRefCounter, MaintenanceWindow
from caseapi.maintenance.scope import InventoryIndex, InventoryRow, resolve
from caseapi.ntus.models import Ntu


@dataclass(frozen=True, slots=True)
class Coverage:
    ntu_id: str
    behaviour: Literal["mute", "skip"]  # "skip" wins over "mute" when several windows cover an NTU
    until: datetime  # the latest ends_at among the covering active windows
    refs: tuple[str, ...]  # the covering windows' references


@dataclass(frozen=True, slots=True)
class WindowTransition:
    """A window that started or ended inside a time range (for notifications)."""

    event: Literal["started", "ended"]
    at: datetime
    window: MaintenanceWindow


def scope_of(window: MaintenanceWindow) -> dict[str, list[str]]:
    """The window's scope lists keyed as the API names them."""
    return {
        "ntus": list(window.scope_ntus),
        "nodes": list(window.scope_nodes),
        "customers": list(window.scope_customers),
        "services": list(window.scope_services),
    }


def _active_at(at: datetime) -> ColumnElement[bool]:
    return and_(
        MaintenanceWindow.cancelled_at.is_(None),
        MaintenanceWindow.starts_at <= at,
        MaintenanceWindow.ends_at > at,
    )


async def active_coverage(session: AsyncSession, *, at: datetime) -> dict[str, Coverage]:
    """NTUs covered at ``at`` by a window that is not cancelled: starts_at <= at < ends_at."""
    windows = list(
        (await session.execute(select(MaintenanceWindow).where(_active_at(at)))).scalars()
    )
    if not windows:
        return {}
    index = await load_inventory(session, windows=windows)
    skip: set[str] = set()
    until: dict[str, datetime] = {}
    refs: dict[str, list[str]] = {}
    for window in sorted(windows, key=lambda w: w.ref):
        for ntu_id in resolve(scope_of(window), index):
            if window.behaviour == MaintenanceBehaviour.SKIP:
                skip.add(ntu_id)
            previous = until.get(ntu_id)
            if previous is None or window.ends_at > previous:
                until[ntu_id] = window.ends_at
            refs.setdefault(ntu_id, []).append(window.ref)
    return {
        ntu_id: Coverage(
            ntu_id=ntu_id,
            behaviour="skip" if ntu_id in skip else "mute",
            until=until[ntu_id],
            refs=tuple(refs[ntu_id]),
        )
        for ntu_id in until
    }


async def load_inventory(
    session: AsyncSession, *, windows: Sequence[MaintenanceWindow] | None = None
) -> InventoryIndex:
    """Index the inventory rows needed to resolve ``windows`` (all rows when ``None``).

    Node scopes need the whole parent tree; customer and service scopes only their
    rows; NTU scopes need nothing.
    """
    stmt = select(Ntu.id, Ntu.customer_id, Ntu.service_id, Ntu.parent)
    if windows is not None:
        if any(window.scope_nodes for window in windows):
            pass  # the whole tree
        else:
            customers = {c for window in windows for c in window.scope_customers}
            services = {s for window in windows for s in window.scope_services}
            if not customers and not services:
                return InventoryIndex()
            conditions: list[ColumnElement[bool]] = []
            if customers:
                conditions.append(Ntu.customer_id.in_(sorted(customers)))
            if services:
                conditions.append(Ntu.service_id.in_(sorted(services)))
            stmt = stmt.where(or_(*conditions))
    rows = await session.execute(stmt)
    return InventoryIndex.build(
        InventoryRow(
            id=row.id, customer_id=row.customer_id, service_id=row.service_id, parent=row.parent
        )
        for row in rows
    )


async def existing_customers(session: AsyncSession, *, ids: Iterable[str]) -> set[str]:
    """The ids among ``ids`` that name a customer."""
    wanted = sorted(set(ids))
    if not wanted:
        return set()
    stmt = select(Customer.id).where(Customer.id.in_(wanted))
    return set((await session.execute(stmt)).scalars())


async def next_ref(session: AsyncSession, *, year: int) -> str:
    """Take the next reference for ``year``, e.g. ``MW-2026-0042``.

    Unique and gap-free under concurrency (``caseapi.core.counters``), as for cases.
    """
    value = await next_in_year(session, MaintenanceRefCounter, year=year)
    return f"MW-{year:04d}-{value:04d}"


async def add_window(session: AsyncSession, *, window: MaintenanceWindow) -> MaintenanceWindow:
    """Insert ``window`` and flush, so its id is known."""
    session.add(window)
    await session.flush()
    return window


async def get_window(
    session: AsyncSession, *, ref: str, for_update: bool = False
) -> MaintenanceWindow | None:
    """Return window ``ref`` (locked until the transaction ends when ``for_update``)."""
    stmt = select(MaintenanceWindow).where(MaintenanceWindow.ref == ref)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


def _state_filter(
    stmt: Select[tuple[MaintenanceWindow]], state: MaintenanceState, at: datetime
) -> Select[tuple[MaintenanceWindow]]:
    live = MaintenanceWindow.cancelled_at.is_(None)
    match state:
        case MaintenanceState.CANCELLED:
            return stmt.where(MaintenanceWindow.cancelled_at.is_not(None))
        case MaintenanceState.UPCOMING:
            return stmt.where(live, MaintenanceWindow.starts_at > at)
        case MaintenanceState.ACTIVE:
            return stmt.where(_active_at(at))
        case MaintenanceState.ENDED:
            return stmt.where(live, MaintenanceWindow.ends_at <= at)


async def list_windows(
    session: AsyncSession, *, states: Sequence[MaintenanceState] = (), at: datetime
) -> list[MaintenanceWindow]:
    """Windows in any of ``states`` at ``at`` (all when empty), by start then id."""
    stmt = select(MaintenanceWindow).order_by(MaintenanceWindow.starts_at, MaintenanceWindow.id)
    if states:
        parts = [_state_filter(select(MaintenanceWindow.id), state, at) for state in states]
        stmt = stmt.where(or_(*(MaintenanceWindow.id.in_(part) for part in parts)))
    return list((await session.execute(stmt)).scalars())


async def windows_starting_or_ending(
    session: AsyncSession, *, since: datetime, until: datetime
) -> list[WindowTransition]:
    """Windows (not cancelled) that started or ended in ``(since, until]``, oldest first.

    For the notification ticker: remember ``until`` and pass it as the next
    ``since``, and each start and end is reported exactly once.
    """
    in_range = or_(
        and_(MaintenanceWindow.starts_at > since, MaintenanceWindow.starts_at <= until),
        and_(MaintenanceWindow.ends_at > since, MaintenanceWindow.ends_at <= until),
    )
    stmt = select(MaintenanceWindow).where(MaintenanceWindow.cancelled_at.is_(None), in_range)
    transitions: list[WindowTransition] = []
    for window in (await session.execute(stmt)).scalars():
        if since < window.starts_at <= until:
            transitions.append(WindowTransition("started", window.starts_at, window))
        if since < window.ends_at <= until:
            transitions.append(WindowTransition("ended", window.ends_at, window))
    transitions.sort(key=lambda t: (t.at, t.event == "started", t.window.ref))
    return transitions


async def affected_customers(
    session: AsyncSession, *, window: MaintenanceWindow
) -> dict[str, list[str]]:
    """Customer id -> the sorted ids of its NTUs that ``window`` covers (for notices)."""
    index = await load_inventory(session, windows=[window])
    covered = resolve(scope_of(window), index)
    if window.scope_ntus:
        # NTU scopes resolve without the inventory; look their owners up.
        stmt = select(Ntu.id, Ntu.customer_id).where(Ntu.id.in_(sorted(window.scope_ntus)))
        for row in await session.execute(stmt):
            index.customer_of[row.id] = row.customer_id
    result: dict[str, list[str]] = {}
    for ntu_id in sorted(covered):
        customer = index.customer_of.get(ntu_id)
        if customer is not None:
            result.setdefault(customer, []).append(ntu_id)
    return result
