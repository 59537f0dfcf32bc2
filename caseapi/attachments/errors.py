"""Errors of attachments::

CaseApiError
├── AttachmentTooLargeError      413 attachment_too_large
├── TooManyAttachmentsError      409 too_many_attachments
├── AttachmentUnavailableError   500 attachment_unavailable: stored bytes missing or altered
└── NotFoundError
    └── AttachmentNotFoundError  404 attachment_not_found (also another customer's,
                                 and an internal one asked for by a customer)
"""

from __future__ import annotations

from typing import ClassVar

from caseapi.core.errors import CaseApiError, NotFoundError


class AttachmentTooLargeError(CaseApiError):
    """A file larger than ``attachments.max_size``."""

    code = "attachment_too_large"
    http_status: ClassVar[int] = 413
    # The client may still be sending the rest: we will not read it.
    http_headers: ClassVar[dict[str, str]] = {"Connection": "close"}

    def __init__(self, *, max_size: int) -> None:
        self.max_size = max_size
        super().__init__(f"the file is larger than the limit of {max_size} bytes")
        self.problem_extensions = {"max_size": max_size}


class TooManyAttachmentsError(CaseApiError):
    """The case already holds ``attachments.max_per_case`` attachments."""

    code = "too_many_attachments"
    http_status: ClassVar[int] = 409

    def __init__(self, *, ref: str, max_per_case: int) -> None:
        self.ref = ref
        self.max_per_case = max_per_case
        super().__init__(f"case {ref} already has {max_per_case} attachments, the limit")
        self.problem_extensions = {"max_per_case": max_per_case}


class AttachmentNotFoundError(NotFoundError):
    """No attachment ``attachment_id`` on case ``ref`` that the caller may see."""

    code = "attachment_not_found"

    def __init__(self, ref: str, attachment_id: int) -> None:
        self.ref = ref
        self.attachment_id = attachment_id
        super().__init__(f"case {ref} has no attachment {attachment_id}")


class AttachmentUnavailableError(CaseApiError):
    """The stored bytes are missing or do not match their SHA-256 (never served)."""

    code = "attachment_unavailable"
    http_status: ClassVar[int] = 500

    def __init__(self, attachment_id: int, reason: str) -> None:
        self.attachment_id = attachment_id
        super().__init__(f"attachment {attachment_id} cannot be read: {reason}")
