"""Tenancy and entitlement helpers shared by the domains' routes and services.

A customer sees only its own objects; anything else is answered as if it did not
exist (404 with the domain's ``*_not_found`` code), so a customer cannot probe for
other customers' references. A customer key that names a customer (a body's
``customer_id``, a ``customer`` filter) may name only its own: another is refused
(403 ``customer_mismatch``), never silently replaced by its own.
"""

from __future__ import annotations

from typing import Final

from caseapi.auth.errors import ContractRefusedError, CustomerMismatchError
from caseapi.auth.principal import Principal
from caseapi.core.errors import NotFoundError

ACTIVE: Final = "active"
#: contract_status -> the problem code of the refusal (DOMAIN.md, "Reactive intake").
REFUSAL_CODES: Final = {"expired": "contract_expired", "unpaid": "account_suspended_unpaid"}


def ensure_visible(
    principal: Principal, owner_customer_id: str | None, error: NotFoundError
) -> None:
    """Raise ``error`` unless ``principal`` may see an object owned by ``owner_customer_id``.

    Objects with no owner (``None``) are visible to staff and service callers only.
    """
    if not principal.may_see_customer(owner_customer_id) or (
        principal.is_customer and owner_customer_id is None
    ):
        raise error


def customer_scope(principal: Principal) -> str | None:
    """The customer id every query of this caller must be limited to (``None``: all)."""
    return principal.customer_id if principal.is_customer else None


def own_customer(principal: Principal, named: str | None, *, field: str) -> str | None:
    """The customer a request acts for: a customer key's own, anyone else's as named.

    ``named`` is what the request gave in ``field`` (``None``: nothing); a customer key
    may leave it out or name itself.

    Raises:
        CustomerMismatchError: A customer key naming another customer (whether or
            not it exists: the answer tells nothing about other customers).
    """
    if not principal.is_customer:
        return named
    own = principal.customer_id
    assert own is not None  # a customer key is bound to one customer
    if named is not None and named != own:
        raise CustomerMismatchError(field=field, named=named, own=own)
    return own


def contract_refusal(*, customer_id: str, contract_status: str) -> ContractRefusedError | None:
    """The error refusing support to a customer in ``contract_status``, if any.

    Any status other than ``active`` refuses: ``expired`` and ``unpaid`` get their own
    codes, anything unknown is treated as expired (fail closed).
    """
    if contract_status == ACTIVE:
        return None
    return ContractRefusedError(
        customer_id=customer_id,
        contract_status=contract_status,
        code=REFUSAL_CODES.get(contract_status, "contract_expired"),
    )
