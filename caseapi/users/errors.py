"""Errors of the users domain::

CaseApiError
├── UserRequestError      422 invalid_user_request (``field`` names the bad one)
│   └── WeakPasswordError 422 weak_password
├── EmailTakenError       409 email_taken
├── UserNotFoundError     404 user_not_found
└── LoginFailedError      401 login_failed (one message for every reason)
"""

from __future__ import annotations

from typing import ClassVar

from caseapi.core.errors import CaseApiError, NotFoundError


class UserRequestError(CaseApiError):
    """A user's field is not acceptable; ``field`` names it."""

    code = "invalid_user_request"
    http_status: ClassVar[int] = 422

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class WeakPasswordError(UserRequestError):
    """The password is too short, too long or too common."""

    code = "weak_password"

    def __init__(self, message: str, *, field: str = "password") -> None:
        super().__init__(field, message)


class EmailTakenError(CaseApiError):
    """Another account has this e-mail address (compared case-insensitively)."""

    code = "email_taken"
    http_status: ClassVar[int] = 409

    def __init__(self, email: str) -> None:
        self.email = email
        super().__init__(f"email: an account with {email!r} exists already")


class UserNotFoundError(NotFoundError):
    """No user has this id or e-mail address."""

    code = "user_not_found"

    def __init__(self, what: int | str) -> None:
        self.what = what
        super().__init__(f"no user {what!r}")


class LoginFailedError(CaseApiError):
    """Unknown e-mail, wrong password or disabled account: deliberately one error, so
    the sign-in form cannot tell which accounts exist (``reason`` is for the audit log)."""

    code = "login_failed"
    http_status: ClassVar[int] = 401
    MESSAGE: ClassVar[str] = "The e-mail address or the password is not right."

    def __init__(self, *, reason: str, user_id: int | None = None) -> None:
        self.reason = reason
        self.user_id = user_id
        super().__init__(self.MESSAGE)
