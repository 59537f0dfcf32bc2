"""Storing the inventory: customers, NTUs and upstream nodes as an inventory names them.

Whoever loads the inventory (``nms`` reads a YAML or CSV file) hands the records to
``sync_inventory``; the case service owns the tables (tenancy, entitlement, the NTU
a case is about) and the API reads them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.core.database import session_scope
from caseapi.core.upsert import upsert
from caseapi.customers.models import Customer, CustomerContact
from caseapi.ntus.models import Node, Ntu


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactRecord:
    """A person of a customer: ``email`` unique across customers (lower-cased here)."""

    email: str
    name: str = ""
    language: str = "en"
    roles: tuple[str, ...] = ("notify",)
    """``notify`` (case notifications), ``technical``, ``billing``, ``escalation``."""
    timezone: str | None = None
    """IANA zone of the times this person reads (``None``: the customer's)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomerRecord:
    """A customer: ``contract_status`` other than ``active`` means no support."""

    id: str
    name: str
    contract_status: str = "active"
    attributes: Mapping[str, Any] = field(default_factory=dict)
    """Contract terms (``first_response``, ``waiting_customer_close_after``,
    ``notify_email``, ...)."""
    contacts: Sequence[ContactRecord] = ()
    """Its people; every contact stored is one of these (others are removed)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NtuRecord:
    """An NTU of a customer; ``address`` is unique across NTUs."""

    id: str
    customer_id: str
    address: str
    service_id: str | None = None
    site: str | None = None
    parent: str | None = None
    """The upstream node it hangs off, if any."""
    probe: Mapping[str, Any] = field(default_factory=dict)
    """Probe overrides as the inventory gave them (never secrets: the API reads them)."""
    attributes: Mapping[str, Any] = field(default_factory=dict)
    """Free-form fields (``ttr``, the service order's repair time, ...)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRecord:
    """An upstream node (PoP, aggregation switch, supplier circuit)."""

    id: str
    kind: str
    address: str
    parent: str | None = None
    site: str | None = None


@dataclass(frozen=True, slots=True)
class InventoryDiff:
    """What ``sync_inventory`` changed in the NTUs (ids, sorted)."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def summary(self) -> str:
        """``"1 added, 0 removed, 2 changed"``."""
        return f"{len(self.added)} added, {len(self.removed)} removed, {len(self.changed)} changed"


def _row(record: CustomerRecord | NtuRecord | NodeRecord) -> dict[str, Any]:
    # Shallow (``asdict`` deep-copies every value, seconds at 100,000 NTUs); the
    # records are frozen and built for this call.
    row = {f.name: getattr(record, f.name) for f in fields(record) if f.name != "contacts"}
    for name in ("probe", "attributes"):
        if name in row:
            row[name] = dict(row[name])
    return row


async def sync_inventory(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    customers: Sequence[CustomerRecord],
    ntus: Sequence[NtuRecord],
    nodes: Sequence[NodeRecord],
    unchanged: Collection[str] = (),
) -> InventoryDiff:
    """Make the stored customers, NTUs and nodes match the records, in one transaction.

    ``unchanged`` are the ids of further NTUs whose records are the ones the caller
    stored with its previous call: kept as they are, neither read nor compared (a
    reload of 100,000 NTUs that changed one reads one).

    NTU states and cases are left alone: an NTU that leaves and comes back keeps its
    history. Customers are added and updated, never deleted (cases refer to them).
    NTUs missing from ``ntus`` are deleted; nodes are replaced by ``nodes``; the
    stored contacts become exactly the customers' ``contacts`` (by address).

    Raises:
        DatabaseUnavailableError: The database cannot be reached.
        sqlalchemy.exc.IntegrityError: Two NTUs share an address, or two contacts an
            e-mail address (nothing changes).
    """
    async with session_scope(sessionmaker, write=True) as session:
        table = Ntu.__table__
        wanted = {record.id: _row(record) for record in ntus}
        keep = set(unchanged) - set(wanted)
        stored = set((await session.scalars(select(table.c.id))).all())
        query = select(table)  # plain rows, not ORM objects
        if len(wanted) <= _FEW:
            query = query.where(table.c.id.in_(list(wanted)))
        existing = {
            row["id"]: row
            for row in (await session.execute(query)).mappings()
            if row["id"] in wanted
        }
        added = tuple(sorted(set(wanted) - stored))
        removed = tuple(sorted(stored - set(wanted) - keep))
        changed = tuple(
            sorted(
                ntu_id
                for ntu_id in set(wanted) & set(existing)
                if any(existing[ntu_id][k] != v for k, v in wanted[ntu_id].items())
            )
        )
        await upsert(session, Customer, [_row(c) for c in customers], ["id"])
        await _sync_contacts(session, customers)
        if removed:
            await session.execute(delete(Ntu).where(Ntu.id.in_(removed)))
        # Addresses are unique: clear the old rows of changed NTUs first, so that two
        # NTUs swapping addresses in one edit do not trip the constraint.
        if changed:
            await session.execute(delete(Ntu).where(Ntu.id.in_(changed)))
        await upsert(session, Ntu, [wanted[i] for i in (*added, *changed)], ["id"])
        node_rows = [_row(n) for n in nodes]
        await session.execute(delete(Node).where(Node.id.not_in([n["id"] for n in node_rows])))
        await upsert(session, Node, node_rows, ["id"])
        await session.commit()
    return InventoryDiff(added=added, removed=removed, changed=changed)


_FEW = 500
"""Up to this many NTUs to compare are read by id, more with one read of the table."""


async def _sync_contacts(session: AsyncSession, customers: Sequence[CustomerRecord]) -> None:
    rows = [
        {
            "customer_id": customer.id,
            "email": contact.email.strip().lower(),
            "name": contact.name,
            "language": contact.language,
            "timezone": contact.timezone,
            "roles": list(contact.roles),
        }
        for customer in customers
        for contact in customer.contacts
    ]
    await session.execute(
        delete(CustomerContact).where(CustomerContact.email.not_in([r["email"] for r in rows]))
    )
    # Keyed by address: a contact moving to another customer keeps its row.
    await upsert(session, CustomerContact, rows, ["email"])
