"""Maintenance windows: announce, edit, cancel, complete, and read with tenancy.

Rules (DOMAIN.md "Maintenance"):

- A planned window needs ``planned_notice`` (14 days by default) between now and
  its start; an emergency window may start now, or up to ``emergency_backdate`` in
  the past (work already under way when it is entered). Every window ends after it
  starts and lasts at most ``max_duration``. Its scope names at least one NTU, node,
  customer or service, and every id must exist.
- Before the start, everything but the kind may change (moving a planned start
  earlier re-checks the notice). Once started, only ``ends_at`` (not before now) and
  ``actual_impact``; once ended, only ``actual_impact``. A cancelled window never
  changes. Cancel is allowed until the end.
- Complete (after the start) records the real impact for the completion notice;
  completing a window that is still running ends it now.
- Customers see only windows covering one of their NTUs, with the scope reduced to
  those NTUs; anything else is 404 ``maintenance_not_found``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.auth.principal import Principal
from caseapi.core.database import session_scope
from caseapi.maintenance import notices, repository
from caseapi.maintenance.enums import MaintenanceBehaviour, MaintenanceKind, MaintenanceState
from caseapi.maintenance.errors import (
    InsufficientNoticeError,
    MaintenanceNotFoundError,
    MaintenancePreconditionError,
    MaintenanceStateError,
    MaintenanceTooLongError,
    MaintenanceValidationError,
    UnknownScopeError,
    describe,
)
from caseapi.maintenance.models import MaintenanceWindow
from caseapi.maintenance.scope import SCOPE_KINDS, InventoryIndex, resolve, unknown_ids
from nms.clock import Clock

#: Fields that may change before the window starts (PATCH).
EDITABLE_BEFORE_START: Final = frozenset(
    {"title", "description", "behaviour", "starts_at", "ends_at", "scope"}
)
EDITABLE_WHILE_ACTIVE: Final = frozenset({"ends_at", "actual_impact"})
EDITABLE_AFTER_END: Final = frozenset({"actual_impact"})
_NOT_NULL: Final = frozenset({"title", "description", "behaviour", "starts_at", "ends_at", "scope"})


@dataclass(frozen=True, slots=True, kw_only=True)
class MaintenanceDraft:
    """A new window as asked for (already shape-checked at the edge)."""

    title: str
    description: str
    kind: MaintenanceKind
    behaviour: MaintenanceBehaviour
    starts_at: datetime
    ends_at: datetime
    scope: Mapping[str, Sequence[str]]


@dataclass(frozen=True, slots=True)
class MaintenanceView:
    """A window as one caller may see it.

    ``covered`` holds the NTU ids the window covers that the caller may see (all of
    them for staff, the caller's own for customers); ``customer_view`` tells the
    routes to hide the staff-only fields and the scope lists.
    """

    window: MaintenanceWindow
    state: MaintenanceState
    covered: frozenset[str]
    customer_view: bool


def state_of(window: MaintenanceWindow, at: datetime) -> MaintenanceState:
    """Where ``window`` stands at ``at``."""
    if window.cancelled_at is not None:
        return MaintenanceState.CANCELLED
    if at < window.starts_at:
        return MaintenanceState.UPCOMING
    if at < window.ends_at:
        return MaintenanceState.ACTIVE
    return MaintenanceState.ENDED


def normalise_scope(scope: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Strip, de-duplicate and sort each scope list; refuse an empty scope.

    Raises:
        MaintenanceValidationError: Every list is empty (``scope``) or an id is blank.
    """
    result: dict[str, list[str]] = {}
    for kind in SCOPE_KINDS:
        ids = [str(value).strip() for value in scope.get(kind, ())]
        if any(not value for value in ids):
            raise MaintenanceValidationError(f"scope.{kind}", "ids must not be blank")
        result[kind] = sorted(set(ids))
    if not any(result.values()):
        raise MaintenanceValidationError(
            "scope", "name at least one NTU, node, customer or service"
        )
    return result


class MaintenanceService:
    """Announces, edits and serves maintenance windows."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        planned_notice: timedelta = timedelta(days=14),
        max_duration: timedelta = timedelta(days=7),
        emergency_backdate: timedelta = timedelta(minutes=5),
    ) -> None:
        """Create the service.

        Args:
            sessionmaker: Session factory (``caseapi.core.database.make_sessionmaker``).
            clock: Source of "now" (notice, states, edits).
            planned_notice: Least time between announcing a planned window and its start.
            max_duration: Longest allowed window.
            emergency_backdate: How far in the past an emergency window may start.
        """
        if planned_notice < timedelta(0):
            raise ValueError("planned_notice must not be negative")
        if max_duration <= timedelta(0):
            raise ValueError("max_duration must be positive")
        if emergency_backdate < timedelta(0):
            raise ValueError("emergency_backdate must not be negative")
        self._sessionmaker = sessionmaker
        self._clock = clock
        self.planned_notice = planned_notice
        self.max_duration = max_duration
        self.emergency_backdate = emergency_backdate

    # -- rules ---------------------------------------------------------------------

    def _check_period(self, *, starts_at: datetime, ends_at: datetime) -> None:
        if ends_at <= starts_at:
            raise MaintenanceValidationError("ends_at", "must be after starts_at")
        if ends_at - starts_at > self.max_duration:
            raise MaintenanceTooLongError(length=ends_at - starts_at, maximum=self.max_duration)

    def _check_start(self, *, kind: str, starts_at: datetime, now: datetime) -> None:
        if kind == MaintenanceKind.PLANNED:
            if starts_at - now < self.planned_notice:
                raise InsufficientNoticeError(given=starts_at - now, needed=self.planned_notice)
        elif starts_at < now - self.emergency_backdate:
            raise MaintenanceValidationError(
                "starts_at",
                f"an emergency window may start at most {describe(self.emergency_backdate)} "
                "in the past",
            )

    @staticmethod
    async def _check_scope(session: AsyncSession, scope: Mapping[str, Sequence[str]]) -> None:
        index = await repository.load_inventory(session)
        customers = await repository.existing_customers(session, ids=scope["customers"])
        unknown = unknown_ids(scope, index, customers=customers)
        if unknown:
            raise UnknownScopeError(unknown)

    # -- commands ------------------------------------------------------------------

    async def create(self, *, principal: Principal, draft: MaintenanceDraft) -> MaintenanceView:
        """Announce a window.

        Raises:
            MaintenanceValidationError: Empty scope, ends before it starts, an
                emergency start too far in the past.
            InsufficientNoticeError: A planned window starting too soon.
            MaintenanceTooLongError: Longer than ``max_duration``.
            UnknownScopeError: Scope ids that name nothing.
        """
        now = self._clock.now()
        starts_at, ends_at = _utc(draft.starts_at), _utc(draft.ends_at)
        scope = normalise_scope(draft.scope)
        self._check_period(starts_at=starts_at, ends_at=ends_at)
        self._check_start(kind=draft.kind, starts_at=starts_at, now=now)
        async with session_scope(self._sessionmaker, write=True) as session:
            await self._check_scope(session, scope)
            window = MaintenanceWindow(
                ref=await repository.next_ref(session, year=now.year),
                title=draft.title,
                description=draft.description,
                kind=str(draft.kind),
                behaviour=str(draft.behaviour),
                starts_at=starts_at,
                ends_at=ends_at,
                scope_ntus=scope["ntus"],
                scope_nodes=scope["nodes"],
                scope_customers=scope["customers"],
                scope_services=scope["services"],
                created_by=principal.actor,
                created_at=now,
                updated_by=principal.actor,
                updated_at=now,
                cancelled_at=None,
                cancelled_by=None,
                completed_at=None,
                completed_by=None,
                actual_impact=None,
                version=1,
            )
            await repository.add_window(session, window=window)
            await notices.announce(session, window=window, at=now)
            view = await self._view(session, principal, window, now=now)
            await session.commit()
            return view

    async def update(
        self,
        *,
        principal: Principal,
        ref: str,
        changes: Mapping[str, Any],
        if_match: int | None = None,
    ) -> MaintenanceView:
        """Apply ``changes`` (PATCH semantics) within the rules of the window's state.

        Raises:
            MaintenanceNotFoundError: No such window.
            MaintenancePreconditionError: ``if_match`` is not the current version.
            MaintenanceStateError: A field that may not change in this state
                (``maintenance_started``, ``maintenance_ended``,
                ``maintenance_cancelled``, ``maintenance_not_started``).
            MaintenanceValidationError, InsufficientNoticeError,
            MaintenanceTooLongError, UnknownScopeError: As for ``create``.
        """
        now = self._clock.now()
        for name in _NOT_NULL & set(changes):
            if changes[name] is None:
                raise MaintenanceValidationError(name, "must not be null")
        async with session_scope(self._sessionmaker, write=True) as session:
            window = await self._locked(session, ref, if_match)
            self._check_editable(window, set(changes), now=now)
            starts_at = _utc(changes.get("starts_at", window.starts_at))
            ends_at = _utc(changes.get("ends_at", window.ends_at))
            if "starts_at" in changes or "ends_at" in changes:
                self._check_period(starts_at=starts_at, ends_at=ends_at)
            if "starts_at" in changes and (
                window.kind == MaintenanceKind.EMERGENCY or starts_at < window.starts_at
            ):
                # Moving a planned start later keeps (more than) the notice given.
                self._check_start(kind=window.kind, starts_at=starts_at, now=now)
            if "ends_at" in changes and ends_at < now:
                raise MaintenanceValidationError("ends_at", "must not be in the past")
            if "scope" in changes:
                scope = normalise_scope(changes["scope"])
                await self._check_scope(session, scope)
                window.scope_ntus = scope["ntus"]
                window.scope_nodes = scope["nodes"]
                window.scope_customers = scope["customers"]
                window.scope_services = scope["services"]
            for name in ("title", "description", "actual_impact"):
                if name in changes:
                    setattr(window, name, changes[name])
            if "behaviour" in changes:
                window.behaviour = str(changes["behaviour"])
            window.starts_at, window.ends_at = starts_at, ends_at
            self._touch(window, principal, now)
            view = await self._view(session, principal, window, now=now)
            await session.commit()
            return view

    async def cancel(
        self, *, principal: Principal, ref: str, if_match: int | None = None
    ) -> MaintenanceView:
        """Cancel a window that has not ended; it stops covering anything at once.

        Raises:
            MaintenanceNotFoundError: No such window.
            MaintenancePreconditionError: Stale ``if_match``.
            MaintenanceStateError: Already cancelled, or already ended.
        """
        now = self._clock.now()
        async with session_scope(self._sessionmaker, write=True) as session:
            window = await self._locked(session, ref, if_match)
            state = state_of(window, now)
            if state is MaintenanceState.CANCELLED:
                raise _cancelled(ref)
            if state is MaintenanceState.ENDED:
                raise MaintenanceStateError(
                    "maintenance_ended", f"{ref} has ended and can no longer be cancelled"
                )
            window.cancelled_at = now
            window.cancelled_by = principal.actor
            self._touch(window, principal, now)
            await notices.cancelled(session, window=window, at=now)
            view = await self._view(session, principal, window, now=now)
            await session.commit()
            return view

    async def complete(
        self,
        *,
        principal: Principal,
        ref: str,
        actual_impact: str,
        if_match: int | None = None,
    ) -> MaintenanceView:
        """Record that the work is done and its real impact; a running window ends now.

        Raises:
            MaintenanceNotFoundError: No such window.
            MaintenancePreconditionError: Stale ``if_match``.
            MaintenanceStateError: Cancelled, not started yet, or already completed
                (amend ``actual_impact`` with PATCH instead).
        """
        now = self._clock.now()
        async with session_scope(self._sessionmaker, write=True) as session:
            window = await self._locked(session, ref, if_match)
            state = state_of(window, now)
            if state is MaintenanceState.CANCELLED:
                raise _cancelled(ref)
            if state is MaintenanceState.UPCOMING:
                raise MaintenanceStateError(
                    "maintenance_not_started", f"{ref} has not started yet; cancel it instead"
                )
            if window.completed_at is not None:
                raise MaintenanceStateError(
                    "maintenance_completed",
                    f"{ref} is already completed; change actual_impact with PATCH",
                )
            window.actual_impact = actual_impact
            window.completed_at = now
            window.completed_by = principal.actor
            if now < window.ends_at:
                window.ends_at = now
            self._touch(window, principal, now)
            await notices.completed(session, window=window, at=now)
            view = await self._view(session, principal, window, now=now)
            await session.commit()
            return view

    async def notify_due(
        self, *, since: datetime, until: datetime, reminder_before: timedelta = timedelta(hours=24)
    ) -> dict[str, int]:
        """Enqueue the started notices and reminders due at ``until`` and commit.

        See ``caseapi.maintenance.notices.notify_due``; safe to call repeatedly and
        from several processes (each notice goes out once).
        """
        async with session_scope(self._sessionmaker, write=True) as session:
            counts = await notices.notify_due(
                session, since=since, until=until, reminder_before=reminder_before
            )
            await session.commit()
            return counts

    # -- queries -------------------------------------------------------------------

    async def get(self, *, principal: Principal, ref: str) -> MaintenanceView:
        """Return window ``ref`` as the caller may see it.

        Raises:
            MaintenanceNotFoundError: No such window, or (customers) one that covers
                none of their NTUs.
        """
        now = self._clock.now()
        async with session_scope(self._sessionmaker) as session:
            window = await repository.get_window(session, ref=ref)
            if window is None:
                raise MaintenanceNotFoundError(ref)
            index = await repository.load_inventory(session)
            view = self._make_view(principal, window, index, now=now)
            if view is None:
                raise MaintenanceNotFoundError(ref)
            return view

    async def list_windows(
        self,
        *,
        principal: Principal,
        states: Sequence[MaintenanceState] = (),
        ntu: str | None = None,
        customer: str | None = None,
        limit: int = 100,
    ) -> tuple[list[MaintenanceView], int]:
        """Windows the caller may see, filtered; returns (first ``limit``, total count).

        ``ntu`` keeps windows covering that NTU, ``customer`` windows covering one of
        that customer's NTUs; customers only ever get windows covering their own.
        """
        now = self._clock.now()
        async with session_scope(self._sessionmaker) as session:
            windows = await repository.list_windows(session, states=states, at=now)
            index = await repository.load_inventory(session) if windows else InventoryIndex()
        views: list[MaintenanceView] = []
        for window in windows:
            view = self._make_view(principal, window, index, now=now)
            if view is None:
                continue
            if ntu is not None and ntu not in view.covered:
                continue
            if customer is not None and not any(
                index.customer_of.get(ntu_id) == customer for ntu_id in view.covered
            ):
                continue
            views.append(view)
        return views[:limit], len(views)

    # -- helpers -------------------------------------------------------------------

    @staticmethod
    def _make_view(
        principal: Principal, window: MaintenanceWindow, index: InventoryIndex, *, now: datetime
    ) -> MaintenanceView | None:
        covered = resolve(repository.scope_of(window), index)
        if principal.is_customer:
            covered = {n for n in covered if index.customer_of.get(n) == principal.customer_id}
            if not covered:
                return None
        return MaintenanceView(
            window=window,
            state=state_of(window, now),
            covered=frozenset(covered),
            customer_view=principal.is_customer,
        )

    async def _view(
        self,
        session: AsyncSession,
        principal: Principal,
        window: MaintenanceWindow,
        *,
        now: datetime,
    ) -> MaintenanceView:
        index = await repository.load_inventory(session)
        view = self._make_view(principal, window, index, now=now)
        assert view is not None  # only staff change windows
        return view

    @staticmethod
    async def _locked(session: AsyncSession, ref: str, if_match: int | None) -> MaintenanceWindow:
        window = await repository.get_window(session, ref=ref, for_update=True)
        if window is None:
            raise MaintenanceNotFoundError(ref)
        if if_match is not None and if_match != window.version:
            raise MaintenancePreconditionError(
                f"{ref} is at version {window.version}, not {if_match}; GET it again",
                current_version=window.version,
            )
        return window

    @staticmethod
    def _check_editable(window: MaintenanceWindow, fields: set[str], *, now: datetime) -> None:
        state = state_of(window, now)
        if state is MaintenanceState.CANCELLED:
            raise _cancelled(window.ref)
        allowed, code, why = {
            MaintenanceState.UPCOMING: (
                EDITABLE_BEFORE_START,
                "maintenance_not_started",
                "has not started; actual_impact is set at completion",
            ),
            MaintenanceState.ACTIVE: (
                EDITABLE_WHILE_ACTIVE,
                "maintenance_started",
                "has started; only ends_at and actual_impact may change",
            ),
            MaintenanceState.ENDED: (
                EDITABLE_AFTER_END,
                "maintenance_ended",
                "has ended; only actual_impact may change",
            ),
        }[state]
        refused = sorted(fields - allowed)
        if refused:
            raise MaintenanceStateError(
                code, f"{window.ref} {why} (refused: {', '.join(refused)})", fields=refused
            )

    @staticmethod
    def _touch(window: MaintenanceWindow, principal: Principal, now: datetime) -> None:
        window.updated_at = now
        window.updated_by = principal.actor
        window.version += 1


def _cancelled(ref: str) -> MaintenanceStateError:
    return MaintenanceStateError("maintenance_cancelled", f"{ref} is cancelled")


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise MaintenanceValidationError("starts_at/ends_at", "timestamps must include a zone")
    return value.astimezone(UTC)
