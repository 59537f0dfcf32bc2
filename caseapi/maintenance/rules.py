"""The rules of maintenance windows, without the database (DOMAIN.md "Maintenance").

``MaintenanceRules`` checks a window's period and start against the configured
notice and limits; ``check_editable`` says which fields may change in the window's
state; ``state_of`` and ``normalise_scope`` are the shared vocabulary of both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from caseapi.maintenance.config import MaintenanceSettings
from caseapi.maintenance.enums import MaintenanceKind, MaintenanceState
from caseapi.maintenance.errors import (
    InsufficientNoticeError,
    MaintenanceStateError,
    MaintenanceTooLongError,
    MaintenanceValidationError,
    describe,
)
from caseapi.maintenance.models import MaintenanceWindow
from caseapi.maintenance.scope import SCOPE_KINDS

#: Fields that may change before the window starts (PATCH).
EDITABLE_BEFORE_START: Final = frozenset(
    {"title", "description", "behaviour", "starts_at", "ends_at", "scope"}
)
EDITABLE_WHILE_ACTIVE: Final = frozenset({"ends_at", "actual_impact"})
EDITABLE_AFTER_END: Final = frozenset({"actual_impact"})
#: Fields a PATCH may not set to null.
NOT_NULL: Final = frozenset({"title", "description", "behaviour", "starts_at", "ends_at", "scope"})


@dataclass(frozen=True, slots=True, kw_only=True)
class MaintenanceRules:
    """How much notice a planned window needs, how long a window may last, and how
    far in the past an emergency window may start."""

    planned_notice: timedelta
    max_duration: timedelta
    emergency_backdate: timedelta

    def __post_init__(self) -> None:
        if self.planned_notice < timedelta(0):
            raise ValueError("planned_notice must not be negative")
        if self.max_duration <= timedelta(0):
            raise ValueError("max_duration must be positive")
        if self.emergency_backdate < timedelta(0):
            raise ValueError("emergency_backdate must not be negative")

    @classmethod
    def from_settings(cls, settings: MaintenanceSettings) -> MaintenanceRules:
        """The rules of the ``maintenance.*`` settings."""
        return cls(
            planned_notice=settings.planned_notice,
            max_duration=settings.max_duration,
            emergency_backdate=settings.emergency_backdate,
        )

    def check_period(self, *, starts_at: datetime, ends_at: datetime) -> None:
        """Refuse a window that ends before it starts or lasts too long.

        Raises:
            MaintenanceValidationError: ``ends_at`` is not after ``starts_at``.
            MaintenanceTooLongError: Longer than ``max_duration``.
        """
        if ends_at <= starts_at:
            raise MaintenanceValidationError("ends_at", "must be after starts_at")
        if ends_at - starts_at > self.max_duration:
            raise MaintenanceTooLongError(length=ends_at - starts_at, maximum=self.max_duration)

    def check_start(self, *, kind: str, starts_at: datetime, now: datetime) -> None:
        """Refuse a planned start with too little notice, an emergency start too far back.

        Raises:
            InsufficientNoticeError: A planned window starting too soon.
            MaintenanceValidationError: An emergency window starting too far in the past.
        """
        if kind == MaintenanceKind.PLANNED:
            if starts_at - now < self.planned_notice:
                raise InsufficientNoticeError(given=starts_at - now, needed=self.planned_notice)
        elif starts_at < now - self.emergency_backdate:
            raise MaintenanceValidationError(
                "starts_at",
                f"an emergency window may start at most {describe(self.emergency_backdate)} "
                "in the past",
            )


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


def check_editable(window: MaintenanceWindow, fields: set[str], *, now: datetime) -> None:
    """Refuse changing ``fields`` of ``window`` in the state it is in at ``now``.

    Raises:
        MaintenanceStateError: Names the refused fields (``maintenance_cancelled``,
            ``maintenance_not_started``, ``maintenance_started``, ``maintenance_ended``).
    """
    state = state_of(window, now)
    if state is MaintenanceState.CANCELLED:
        raise cancelled_error(window.ref)
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


def cancelled_error(ref: str) -> MaintenanceStateError:
    """The error for any change to a cancelled window."""
    return MaintenanceStateError("maintenance_cancelled", f"{ref} is cancelled")


def utc(value: datetime) -> datetime:
    """``value`` in UTC.

    Raises:
        MaintenanceValidationError: ``value`` is naive.
    """
    if value.tzinfo is None:
        raise MaintenanceValidationError("starts_at/ends_at", "timestamps must include a zone")
    return value.astimezone(UTC)
