"""Who is calling: the role and tenancy of an authenticated API key.

Roles:
    customer  bound to one customer; sees and touches only that customer's cases,
              NTUs and RFOs, never internal comments or internal fields
    engineer  works cases (take, assign, transition, comment, commitments, RFO)
    noc       reads everything, works cases like an engineer
    admin     everything, including API keys
    service   machine callers (the detector in distributed mode, integrations)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    CUSTOMER = "customer"
    ENGINEER = "engineer"
    NOC = "noc"
    ADMIN = "admin"
    SERVICE = "service"


STAFF_ROLES = frozenset({Role.ENGINEER, Role.NOC, Role.ADMIN})


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: int | None
    name: str
    role: Role
    customer_id: str | None = None
    #: The key's public prefix, for the audit log; not part of the caller's identity.
    key_prefix: str | None = field(default=None, compare=False)
    #: The console account of a person signed in to the web console (``key_id`` is
    #: then ``None``); the audit log records them as a ``user``.
    user_id: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if (self.role == Role.CUSTOMER) != (self.customer_id is not None):
            raise ValueError("a customer key is bound to exactly one customer; others to none")

    @property
    def is_customer(self) -> bool:
        return self.role == Role.CUSTOMER

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def actor(self) -> str:
        """How this caller appears in timelines: ``engineer:alice``."""
        return f"{self.role.value}:{self.name}"

    def may_see_customer(self, customer_id: str | None) -> bool:
        return not self.is_customer or customer_id == self.customer_id
