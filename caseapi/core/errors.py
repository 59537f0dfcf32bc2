"""Exceptions raised by the case service and its database layer.

Every error raised on purpose by ``caseapi`` derives from one root, so callers
(the CLI, the API's error handlers, the detector wiring) can catch it in one place::

    CaseApiError
    ├── DatabaseError                 the database cannot be used
    │   ├── DatabaseConfigError       bad URL or driver (fix the configuration)
    │   └── DatabaseUnavailableError  cannot connect right now (retry later)
    ├── NotFoundError                 a lookup by key found nothing
    │   ├── CaseNotFoundError
    │   └── NtuNotFoundError
    ├── InvalidCursorError            a pagination cursor we did not issue
    └── UnknownQueryParameterError    422 a query parameter the operation does not take

Each carries its context as attributes (``url``, ``ref``, ``ntu_id``, ``cursor``,
``unknown``) and a machine-readable ``code`` that the API puts into problem+json bodies.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

_PASSWORD_IN_URL = re.compile(r"(?P<head>://[^:/@]*:)[^@]*(?P<tail>@)")


def mask_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``, parseable or not."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return _PASSWORD_IN_URL.sub(r"\g<head>***\g<tail>", url)


class CaseApiError(Exception):
    """Root of every error raised on purpose by ``caseapi``."""

    code = "case_api_error"


class DatabaseError(CaseApiError):
    """The database cannot be used; ``url`` is the masked database URL."""

    code = "database_error"

    def __init__(self, message: str, *, url: str) -> None:
        self.url = mask_url(url)
        super().__init__(f"{message} (database {self.url})")


class DatabaseConfigError(DatabaseError):
    """The database URL is malformed or names a driver we cannot use."""

    code = "database_config_error"


class DatabaseUnavailableError(DatabaseError):
    """The database did not accept a connection (down, unreachable, refused)."""

    code = "database_unavailable"


class NotFoundError(CaseApiError):
    """A lookup by key found nothing."""

    code = "not_found"


class CaseNotFoundError(NotFoundError):
    """No case has reference ``ref``."""

    code = "case_not_found"

    def __init__(self, ref: str) -> None:
        self.ref = ref
        super().__init__(f"no case with reference {ref!r}")


class NtuNotFoundError(NotFoundError):
    """No NTU has id ``ntu_id``."""

    code = "ntu_not_found"

    def __init__(self, ntu_id: str) -> None:
        self.ntu_id = ntu_id
        super().__init__(f"no NTU with id {ntu_id!r}")


class InvalidCursorError(CaseApiError):
    """A pagination cursor that this service did not issue (or that was altered)."""

    code = "invalid_cursor"

    def __init__(self, cursor: str) -> None:
        self.cursor = cursor
        super().__init__("invalid pagination cursor")


class UnknownQueryParameterError(CaseApiError):
    """The request names query parameters the operation does not take.

    Refused rather than ignored: ``GET /v1/cases?custmer=x`` must not answer every
    case as if it had been filtered. ``unknown`` and ``allowed`` are in request and
    declaration order.
    """

    code = "unknown_query_parameter"
    http_status: ClassVar[int] = 422

    def __init__(self, *, unknown: Sequence[str], allowed: Sequence[str]) -> None:
        self.unknown = list(unknown)
        self.allowed = list(allowed)
        named = ", ".join(name or "''" for name in self.unknown)
        takes = (
            f"allowed: {', '.join(self.allowed)}" if self.allowed else "this operation takes none"
        )
        super().__init__(f"unknown query parameter(s): {named}; {takes}")
        self.problem_extensions = {
            "unknown": self.unknown,
            "allowed": self.allowed,
            "errors": [
                {"field": name, "message": "unknown query parameter"} for name in self.unknown
            ],
        }
