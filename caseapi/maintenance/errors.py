"""Errors of the maintenance API, each with an HTTP status and a problem ``code``::

    CaseApiError
    ├── NotFoundError
    │   └── MaintenanceNotFoundError       404 maintenance_not_found
    └── MaintenanceError
        ├── MaintenanceValidationError     422 validation_error (names the field)
        ├── InsufficientNoticeError        422 insufficient_notice (given vs needed)
        ├── UnknownScopeError              422 unknown_scope_ids (names them)
        ├── MaintenanceTooLongError        422 maintenance_too_long
        ├── MaintenanceStateError          409 maintenance_started / _ended /
        │                                      _cancelled / _not_started / _completed
        └── MaintenancePreconditionError   412 precondition_failed (stale If-Match)

``problem_extensions`` become extra problem members (``errors``, ``unknown``,
``notice_given_seconds`` ...).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from caseapi.core.errors import CaseApiError, NotFoundError


def describe(delta: timedelta) -> str:
    """``13 days 4 h 5 min`` (negative durations get a leading minus)."""
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    minutes, _ = divmod(abs(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = []
    if days:
        parts.append(f"{days} day{'s' if days != 1 else ''}")
    if hours:
        parts.append(f"{hours} h")
    if minutes or not parts:
        parts.append(f"{minutes} min")
    return sign + " ".join(parts)


class MaintenanceNotFoundError(NotFoundError):
    """No (visible) maintenance window has reference ``ref``."""

    code = "maintenance_not_found"

    def __init__(self, ref: str) -> None:
        self.ref = ref
        super().__init__(f"no maintenance window with reference {ref!r}")


class MaintenanceError(CaseApiError):
    """A request the maintenance rules refuse."""

    code = "maintenance_error"
    http_status: ClassVar[int] = 409

    def __init__(self, message: str, **extensions: Any) -> None:
        self.problem_extensions = extensions
        super().__init__(message)


class MaintenanceValidationError(MaintenanceError):
    """A field breaks a rule; ``field`` names it."""

    code = "validation_error"
    http_status: ClassVar[int] = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", errors=[{"field": field, "message": message}])
        self.field = field


class InsufficientNoticeError(MaintenanceError):
    """A planned window announced with less than the required notice."""

    code = "insufficient_notice"
    http_status: ClassVar[int] = 422

    def __init__(self, *, given: timedelta, needed: timedelta) -> None:
        self.given = given
        self.needed = needed
        super().__init__(
            f"planned maintenance needs at least {describe(needed)} notice; "
            f"{describe(given)} given (starts_at is too early; use kind 'emergency' "
            "for urgent work)",
            notice_given_seconds=int(given.total_seconds()),
            notice_required_seconds=int(needed.total_seconds()),
            errors=[{"field": "starts_at", "message": "less than the required notice"}],
        )


class UnknownScopeError(MaintenanceError):
    """Scope ids that name nothing in the inventory; ``unknown`` lists them per kind."""

    code = "unknown_scope_ids"
    http_status: ClassVar[int] = 422

    def __init__(self, unknown: dict[str, list[str]]) -> None:
        self.unknown = unknown
        named = "; ".join(f"scope.{kind}: {', '.join(ids)}" for kind, ids in unknown.items())
        super().__init__(
            f"unknown scope ids: {named}",
            unknown=unknown,
            errors=[
                {"field": f"scope.{kind}", "message": f"unknown: {', '.join(ids)}"}
                for kind, ids in unknown.items()
            ],
        )


class MaintenanceTooLongError(MaintenanceError):
    """The window is longer than the configured maximum."""

    code = "maintenance_too_long"
    http_status: ClassVar[int] = 422

    def __init__(self, *, length: timedelta, maximum: timedelta) -> None:
        super().__init__(
            f"a maintenance window may last at most {describe(maximum)}; "
            f"this one lasts {describe(length)}",
            length_seconds=int(length.total_seconds()),
            max_seconds=int(maximum.total_seconds()),
            errors=[{"field": "ends_at", "message": "window too long"}],
        )


class MaintenanceStateError(MaintenanceError):
    """The change is not allowed in the window's current state; ``code`` says which."""

    def __init__(self, code: str, message: str, **extensions: Any) -> None:
        self.code = code
        super().__init__(message, **extensions)


class MaintenancePreconditionError(MaintenanceError):
    """``If-Match`` does not name the current version of the window."""

    code = "precondition_failed"
    http_status: ClassVar[int] = 412
