"""The customers table; written by ``caseapi.inventory.sync_inventory`` only.

Customers are never deleted (cases, NTUs and API keys refer to them).
``contract_status`` other than ``active`` means no support; ``attributes`` holds
contract terms (``first_response``, ``waiting_customer_close_after``,
``notify_email``, ...).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from caseapi.core.base import Base


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    contract_status: Mapped[str] = mapped_column(String(16), default="active")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
