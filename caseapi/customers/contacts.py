"""Customer contacts: who a customer's mails come from and go to (read side).

Written by ``caseapi.inventory.sync_inventory`` (the inventory's ``contacts:``).
Addresses are stored lower-case, unique across customers, so a sender's address
names at most one customer. Keyword-only where it helps; callers own the session.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.headerregistry import Address
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.customers.models import Customer, CustomerContact

#: What a contact may be: ``notify`` gets every case notification; the others are
#: for people and for the mail ingest to tell who writes (no mail by themselves).
CONTACT_ROLES: Final = ("notify", "technical", "billing", "escalation")
DEFAULT_ROLES: Final = ("notify",)
#: The language of a legacy ``attributes.notify_email`` address.
DEFAULT_LANGUAGE: Final = "en"


# An addr-spec as people write one: local@domain.tld, no quotes, comments or spaces.
_EMAIL: Final = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def check_email(value: str) -> str:
    """``value`` as a lower-case address (``name@example.net``).

    Raises:
        ValueError: Not one plain address (display names, lists and quoted local
            parts are refused: the inventory and the settings hold addresses only).
    """
    text = value.strip()
    problem = f"{text[:80]!r} is not an e-mail address such as name@example.net"
    if not _EMAIL.match(text) or ".." in text or text.startswith(".") or ".@" in text:
        raise ValueError(problem)
    try:
        Address(addr_spec=text)
    except (HeaderParseError, ValueError, IndexError):
        raise ValueError(problem) from None
    return text.lower()


@dataclass(frozen=True)
class ContactInfo:
    customer_id: str
    email: str
    name: str
    language: str
    roles: tuple[str, ...]
    #: The contact's own zone (``None``: the customer's, see ``customer_zone``).
    timezone: str | None = None


def _info(row: CustomerContact) -> ContactInfo:
    return ContactInfo(
        customer_id=row.customer_id,
        email=row.email,
        name=row.name,
        language=row.language,
        roles=tuple(row.roles or ()),
        timezone=row.timezone,
    )


def customer_zone(customer: Customer | None) -> str | None:
    """The customer's IANA zone (inventory ``timezone``), if it has one."""
    if customer is None:
        return None
    zone = (customer.attributes or {}).get("timezone")
    return zone if isinstance(zone, str) and zone else None


async def contact_by_email(session: AsyncSession, email: str) -> ContactInfo | None:
    """The contact with address ``email`` (any case), if the inventory has one."""
    key = email.strip().lower()
    if not key:
        return None
    row = (
        await session.execute(select(CustomerContact).where(CustomerContact.email == key))
    ).scalar_one_or_none()
    return None if row is None else _info(row)


async def contacts_of(
    session: AsyncSession, *, customer_id: str, role: str | None = None
) -> list[ContactInfo]:
    """The contacts of ``customer_id`` (with ``role`` when given), by address."""
    rows = (
        await session.execute(
            select(CustomerContact)
            .where(CustomerContact.customer_id == customer_id)
            .order_by(CustomerContact.email)
        )
    ).scalars()
    found = [_info(row) for row in rows]
    return [c for c in found if role is None or role in c.roles]
