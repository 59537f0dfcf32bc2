"""Errors of the comment API::

CaseApiError
├── PermissionDeniedError
│   └── InternalCommentForbiddenError  403 forbidden: a customer posting internal
└── CommentRefusedError                409 case_closed: a customer on a finished case
"""

from __future__ import annotations

from typing import ClassVar

from caseapi.auth.errors import PermissionDeniedError
from caseapi.core.errors import CaseApiError


class InternalCommentForbiddenError(PermissionDeniedError):
    """Customers may only write public comments."""

    def __init__(self) -> None:
        super().__init__("customers may only post public comments")


class CommentRefusedError(CaseApiError):
    """A customer comment on a finished (closed, cancelled, merged) case."""

    code = "case_closed"
    http_status: ClassVar[int] = 409

    def __init__(self, ref: str, status: str) -> None:
        self.ref = ref
        self.status = status
        super().__init__(f"case {ref} is {status}: open a new case instead")
