"""Errors of authentication, authorisation and entitlement.

Each carries ``code`` (problem+json) and ``http_status``; the API's generic
``CaseApiError`` handler turns any error with an ``http_status`` into a problem
response, and adds ``http_headers`` when present::

    CaseApiError
    ├── AuthenticationError        401 unauthenticated (missing/unknown/expired/revoked key)
    ├── PermissionDeniedError      403 forbidden (the role may not do this)
    │   └── CustomerMismatchError  403 customer_mismatch (a customer key naming another)
    ├── ContractRefusedError       403 contract_expired / account_suspended_unpaid
    ├── ApiKeyRequestError         422 invalid_api_key_request (e.g. unknown customer)
    └── NotFoundError
        └── ApiKeyNotFoundError    404 api_key_not_found
"""

from __future__ import annotations

from typing import ClassVar

from caseapi.core.errors import CaseApiError, NotFoundError


class AuthenticationError(CaseApiError):
    """The request carries no usable API key; ``reason`` says why (not sent to clients)."""

    code = "unauthenticated"
    http_status: ClassVar[int] = 401
    http_headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": "Bearer"}

    def __init__(self, reason: str) -> None:
        self.reason = reason
        # One message for every cause: a caller learns nothing about which keys exist.
        super().__init__("a valid API key is required (Authorization: Bearer <key>)")


class PermissionDeniedError(CaseApiError):
    """The caller's role may not perform this action."""

    code = "forbidden"
    http_status: ClassVar[int] = 403

    def __init__(self, message: str = "your role may not do this") -> None:
        super().__init__(message)


class CustomerMismatchError(PermissionDeniedError):
    """A customer key named another customer in ``field``; refused, never rewritten."""

    code = "customer_mismatch"

    def __init__(self, *, field: str, named: str, own: str) -> None:
        self.field = field
        self.named = named
        self.own = own
        super().__init__(
            f"{field}: a customer key acts for its own customer only: {named!r} is not "
            f"{own!r} (name your own or leave {field} out)"
        )
        self.problem_extensions = {"field": field}


class ContractRefusedError(CaseApiError):
    """The customer has no support entitlement; ``contract_status`` says why."""

    http_status: ClassVar[int] = 403

    def __init__(self, *, customer_id: str, contract_status: str, code: str) -> None:
        self.customer_id = customer_id
        self.contract_status = contract_status
        self.code = code
        super().__init__(
            f"customer {customer_id!r} has no support: contract status {contract_status!r}"
        )


class ApiKeyRequestError(CaseApiError):
    """A key cannot be created as asked (unknown customer, bad expiry)."""

    code = "invalid_api_key_request"
    http_status: ClassVar[int] = 422


class ApiKeyNotFoundError(NotFoundError):
    """No API key has id ``key_id``."""

    code = "api_key_not_found"

    def __init__(self, key_id: int) -> None:
        self.key_id = key_id
        super().__init__(f"no API key with id {key_id}")
