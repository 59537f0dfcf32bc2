"""Errors of the held-mail API::

CaseApiError
├── NotFoundError
│   ├── MailNotFoundError     404 mail_not_found: no inbound mail with that id
│   └── MailNotKeptError      404 mail_not_kept: its raw mail was not kept (not held)
└── MailNotHeldError          409 mail_not_held: released, discarded or never held
"""

from __future__ import annotations

from typing import ClassVar

from caseapi.core.errors import CaseApiError, NotFoundError


class MailNotFoundError(NotFoundError):
    """No inbound mail has id ``mail_id``."""

    code = "mail_not_found"

    def __init__(self, mail_id: int) -> None:
        self.mail_id = mail_id
        super().__init__(f"no inbound mail {mail_id}")


class MailNotHeldError(CaseApiError):
    """Only a held mail can be released or discarded."""

    code = "mail_not_held"
    http_status: ClassVar[int] = 409

    def __init__(self, mail_id: int, status: str) -> None:
        self.mail_id = mail_id
        self.status = status
        super().__init__(f"inbound mail {mail_id} is {status}, not held")


class MailNotKeptError(NotFoundError):
    """The mail's raw bytes were not kept (only held mail keeps them)."""

    code = "mail_not_kept"

    def __init__(self, mail_id: int) -> None:
        self.mail_id = mail_id
        super().__init__(f"the raw mail of inbound mail {mail_id} was not kept")
