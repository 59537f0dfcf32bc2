"""Tenancy and entitlement helpers shared by the domains' routes and services.

A customer sees only its own objects; anything else is answered as if it did not
exist (404 with the domain's ``*_not_found`` code), so a customer cannot probe for
other customers' references.
"""

from __future__ import annotations

from typing import Final

from caseapi.auth.errors import ContractRefusedError
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
