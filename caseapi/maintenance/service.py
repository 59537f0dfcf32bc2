"""Maintenance windows: announce, edit, cancel, complete, and read with tenancy.

Rules (DOMAIN.md "Maintenance"; the checks themselves are ``caseapi.maintenance.rules``):

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

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.audit import service as audit
from caseapi.audit.enums import AuditAction
from caseapi.auth.principal import Principal
from caseapi.auth.tenancy import own_customer
from caseapi.clock import Clock
from caseapi.core.database import session_scope
from caseapi.maintenance import notices, repository
from caseapi.maintenance.config import MaintenanceSettings
from caseapi.maintenance.enums import MaintenanceBehaviour, MaintenanceKind, MaintenanceState
from caseapi.maintenance.errors import (
    MaintenanceNotFoundError,
    MaintenancePreconditionError,
    MaintenanceStateError,
    MaintenanceValidationError,
    UnknownScopeError,
)
from caseapi.maintenance.models import MaintenanceWindow
from caseapi.maintenance.rules import (
    NOT_NULL,
    MaintenanceRules,
    cancelled_error,
    check_editable,
    normalise_scope,
    state_of,
    utc,
)
from caseapi.maintenance.schemas import MaintenanceCreate
from caseapi.maintenance.scope import InventoryIndex, resolve, unknown_ids

logger = logging.getLogger(__name__)


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

    @classmethod
    def of(cls, body: MaintenanceCreate) -> MaintenanceDraft:
        """The draft of an announcement as the API and the console's form take it."""
        return cls(
            title=body.title,
            description=body.description,
            kind=body.kind,
            behaviour=body.behaviour,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            scope=body.scope.model_dump(),
        )


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


class MaintenanceService:
    """Announces, edits and serves maintenance windows."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        settings: MaintenanceSettings | None = None,
    ) -> None:
        """Create the service.

        Args:
            sessionmaker: Session factory (``caseapi.database.make_sessionmaker``).
            clock: Source of "now" (notice, states, edits) and of the notice loop's waits.
            settings: The ``maintenance.*`` rules; the defaults when omitted.
        """
        settings = settings or MaintenanceSettings()
        self.rules = MaintenanceRules.from_settings(settings)
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._refresh = settings.refresh

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
        starts_at, ends_at = utc(draft.starts_at), utc(draft.ends_at)
        scope = normalise_scope(draft.scope)
        self.rules.check_period(starts_at=starts_at, ends_at=ends_at)
        self.rules.check_start(kind=draft.kind, starts_at=starts_at, now=now)
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
            await self._audit(
                session,
                AuditAction.MAINTENANCE_CREATE,
                window,
                now,
                kind=window.kind,
                starts_at=window.starts_at,
                ends_at=window.ends_at,
                affected_ntus=len(view.covered),
            )
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
        for name in NOT_NULL & set(changes):
            if changes[name] is None:
                raise MaintenanceValidationError(name, "must not be null")
        async with session_scope(self._sessionmaker, write=True) as session:
            window = await self._locked(session, ref, if_match)
            check_editable(window, set(changes), now=now)
            starts_at = utc(changes.get("starts_at", window.starts_at))
            ends_at = utc(changes.get("ends_at", window.ends_at))
            if "starts_at" in changes or "ends_at" in changes:
                self.rules.check_period(starts_at=starts_at, ends_at=ends_at)
            if "starts_at" in changes and (
                window.kind == MaintenanceKind.EMERGENCY or starts_at < window.starts_at
            ):
                # Moving a planned start later keeps (more than) the notice given.
                self.rules.check_start(kind=window.kind, starts_at=starts_at, now=now)
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
            await self._audit(
                session, AuditAction.MAINTENANCE_UPDATE, window, now, changed=sorted(changes)
            )
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
                raise cancelled_error(ref)
            if state is MaintenanceState.ENDED:
                raise MaintenanceStateError(
                    "maintenance_ended", f"{ref} has ended and can no longer be cancelled"
                )
            window.cancelled_at = now
            window.cancelled_by = principal.actor
            self._touch(window, principal, now)
            await notices.cancelled(session, window=window, at=now)
            view = await self._view(session, principal, window, now=now)
            await self._audit(session, AuditAction.MAINTENANCE_CANCEL, window, now, state=state)
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
                raise cancelled_error(ref)
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
            await self._audit(session, AuditAction.MAINTENANCE_COMPLETE, window, now, state=state)
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

    async def run_notices(self) -> None:
        """Queue "maintenance started" notices and reminders as their time comes.

        Runs until cancelled, every ``refresh`` of the clock. Looks back one maximal
        window at start-up, so that a start missed while nothing ran is still
        announced; the windows record what was sent, so overlapping ranges never
        send twice. A failed pass is logged and its range retried next time.
        """
        since = self._clock.now() - self.rules.max_duration
        while True:
            until = self._clock.now()
            try:
                await self.notify_due(since=since, until=until)
                since = until
            except Exception:
                logger.exception("could not queue maintenance notices; retrying")
            await self._clock.sleep(self._refresh.total_seconds())

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

        Raises:
            CustomerMismatchError: A customer naming another customer in ``customer``.
        """
        customer = own_customer(principal, customer, field="customer")
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
    async def _audit(
        session: AsyncSession,
        action: AuditAction,
        window: MaintenanceWindow,
        now: datetime,
        **details: Any,
    ) -> None:
        # A window may span customers: the row names none.
        await audit.record(session, action, at=now, target_id=window.ref, details=details)

    @staticmethod
    def _touch(window: MaintenanceWindow, principal: Principal, now: datetime) -> None:
        window.updated_at = now
        window.updated_by = principal.actor
        window.version += 1
