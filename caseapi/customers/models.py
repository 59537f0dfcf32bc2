"""The customers and their contacts; written by ``caseapi.inventory.sync_inventory`` only.

Customers are never deleted (cases, NTUs and API keys refer to them).
``contract_status`` other than ``active`` means no support; ``attributes`` holds
contract terms (``first_response``, ``waiting_customer_close_after``,
``notify_email``, ...).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from caseapi.core.base import Base


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    contract_status: Mapped[str] = mapped_column(String(16), default="active")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CustomerContact(Base):
    """A person of a customer, as the inventory names them (``contacts:``).

    ``email`` is lower-case and unique across customers: an incoming mail's sender
    names one customer. ``roles`` (``notify``, ``technical``, ``billing``,
    ``escalation``) say what they are told; ``notify`` contacts get every case
    notification, in their ``language``, with times in their ``timezone``.
    """

    __tablename__ = "customer_contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[str] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    language: Mapped[str] = mapped_column(String(16), default="en")
    #: IANA zone the contact reads times in; ``None``: the customer's (else UTC).
    timezone: Mapped[str | None] = mapped_column(String(64), default=None)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
