"""Errors of the canned replies::

CaseApiError
├── NotFoundError
│   └── ReplyNotFoundError        404 reply_not_found
└── ReplyTemplateError            422 invalid_reply_template (names the field and placeholder)
"""

from __future__ import annotations

from typing import ClassVar

from caseapi.core.errors import CaseApiError, NotFoundError


class ReplyNotFoundError(NotFoundError):
    """No (undeleted) canned reply has this id."""

    code = "reply_not_found"

    def __init__(self, reply_id: int) -> None:
        self.reply_id = reply_id
        super().__init__(f"no canned reply with id {reply_id}")


class ReplyTemplateError(CaseApiError):
    """A reply whose text cannot be filled: bad ``$`` syntax or an unknown placeholder."""

    code = "invalid_reply_template"
    http_status: ClassVar[int] = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.problem_extensions = {"errors": [{"field": field, "message": message}]}
