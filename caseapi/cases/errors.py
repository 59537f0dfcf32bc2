"""Errors of the case lifecycle and the case API, each with an HTTP status.

They extend the tree in ``caseapi.core.errors``::

    CaseApiError
    └── CaseRuleError                  a request the case rules refuse
        ├── InvalidTransitionError     409 the lifecycle forbids from -> to
        ├── EscalationNotAllowedError  409 a customer escalation without a missed commitment
        ├── ReopenNotAllowedError      409 reopening outside the monitoring window
        ├── EtrNotAllowedError         409 an ETR on a general request or a restored case
        ├── CancelNotAllowedError      409 a customer cancelling a proactive incident
        ├── PreconditionFailedError    412 ``If-Match`` names an older version
        ├── IdempotencyKeyReusedError  422 same ``Idempotency-Key``, different body
        └── CaseValidationError        422 a field breaks a business rule (names it)
    InvalidCursorError                 (``caseapi.core.errors``) a cursor we did not issue
    └── CursorFiltersChangedError      422 a cursor issued for other list filters

``http_status`` is the HTTP status the API's generic ``CaseApiError`` handler answers
with, ``code`` the machine-readable problem code, ``problem_extensions`` extra problem
members. Entitlement refusals are ``caseapi.auth.errors.ContractRefusedError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from caseapi.core.errors import CaseApiError, InvalidCursorError


class CaseRuleError(CaseApiError):
    """A request that the case rules refuse."""

    code = "case_rule_error"
    http_status: ClassVar[int] = 409

    def __init__(self, message: str, **extensions: Any) -> None:
        self.problem_extensions = extensions
        super().__init__(message)


class InvalidTransitionError(CaseRuleError):
    """The lifecycle does not allow ``from_status -> to`` (or a guard failed)."""

    code = "invalid_transition"

    def __init__(self, from_status: str, to: str, reason: str) -> None:
        self.from_status = from_status
        self.to = to
        super().__init__(f"cannot go from {from_status} to {to}: {reason}", to=to)
        self.problem_extensions["from"] = from_status


class EscalationNotAllowedError(CaseRuleError):
    """A customer may escalate only once a commitment was missed."""

    code = "escalation_not_allowed"


class ReopenNotAllowedError(CaseRuleError):
    """Only a solved case still inside its monitoring window can be reopened."""

    code = "reopen_not_allowed"


class CancelNotAllowedError(CaseRuleError):
    """A customer may cancel only a request of its own, not a proactive incident."""

    code = "cancel_not_allowed"


class EtrNotAllowedError(CaseRuleError):
    """Only an incident still being worked has an estimated time of restoration."""

    code = "etr_not_allowed"


class PreconditionFailedError(CaseRuleError):
    """``If-Match`` does not name the current version of the case."""

    code = "precondition_failed"
    http_status: ClassVar[int] = 412

    @classmethod
    def check(cls, *, current: int, if_match: int | None) -> None:
        """Raise unless ``if_match`` is absent or names version ``current``."""
        if if_match is not None and if_match != current:
            raise cls(
                f"the case is at version {current}, not {if_match}: reload and retry",
                current_version=current,
            )


class IdempotencyKeyReusedError(CaseRuleError):
    """An ``Idempotency-Key`` seen before arrived with a different body."""

    code = "idempotency_key_reused"
    http_status: ClassVar[int] = 422


class CaseValidationError(CaseRuleError):
    """A field breaks a business rule; ``field`` names it.

    ``others`` maps further fields the same rule involves to what it says of each (a
    range whose ends disagree names both ends).
    """

    code = "validation_error"
    http_status: ClassVar[int] = 422

    def __init__(
        self, field: str, message: str, *, others: Mapping[str, str] | None = None
    ) -> None:
        errors = [{"field": field, "message": message}]
        errors += [{"field": name, "message": text} for name, text in (others or {}).items()]
        super().__init__(f"{field}: {message}", errors=errors)
        self.field = field


class CursorFiltersChangedError(InvalidCursorError):
    """A listing's cursor came back with other filters than the listing it came from.

    Refused rather than followed: the next page would silently belong to another
    listing (its ``count`` and its rows), which no caller means.
    """

    def __init__(self, cursor: str) -> None:
        super().__init__(cursor)
        # The API answers ``str(exc)`` as the cursor's error message.
        self.args = (
            "the cursor belongs to a listing with other filters: repeat its filters "
            "unchanged, or start again without a cursor",
        )
