"""Errors of the reports API::

CaseApiError
├── NotFoundError
│   └── CustomerNotFoundError   404 customer_not_found
└── ReportParameterError        422 validation_error: ``errors`` names the field
"""

from __future__ import annotations

from typing import ClassVar

from caseapi.core.errors import CaseApiError, NotFoundError


class CustomerNotFoundError(NotFoundError):
    """No customer has id ``customer_id``."""

    code = "customer_not_found"

    def __init__(self, customer_id: str) -> None:
        self.customer_id = customer_id
        super().__init__(f"no customer with id {customer_id!r}")


class ReportParameterError(CaseApiError):
    """A report parameter that cannot be used; ``field`` names it."""

    code = "validation_error"
    http_status: ClassVar[int] = 422

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")
        self.problem_extensions = {"errors": [{"field": field, "message": message}]}
