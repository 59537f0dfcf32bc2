"""The inventory as the case service stores it: customers, NTUs and upstream nodes.

The case service owns those tables (tenancy, entitlement, the NTU a case is about);
this turns a validated ``Inventory`` into its records and hands them over through
its public interface, ``caseapi.inventory``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.inventory import (
    ContactRecord,
    CustomerRecord,
    InventoryDiff,
    NodeRecord,
    NtuRecord,
)
from caseapi.inventory import sync_inventory as store_inventory
from nms.inventory.model import Inventory, NtuSpec, repair_time_text


def _ntu_record(spec: NtuSpec, inventory: Inventory) -> NtuRecord:
    probe: dict[str, Any] = spec.probe.model_dump()
    if spec.snmp is not None:
        # Never the community or the v3 keys: the case service's tables are read by
        # the API.
        probe["snmp"] = spec.snmp.model_dump(
            mode="json", exclude={"community", "auth_key", "priv_key"}
        )
    return NtuRecord(
        id=spec.id,
        customer_id=spec.customer,
        service_id=spec.service_id,
        site=spec.site,
        address=str(spec.address),
        parent=spec.parent,
        probe=probe,
        attributes={**spec.attributes, **_repair_times(spec, inventory)},
    )


def _repair_times(spec: NtuSpec, inventory: Inventory) -> dict[str, Any]:
    """The ``ttr_service`` / ``ttr_site`` attributes of ``spec`` from the inventory's
    ``services`` and ``sites`` (``caseapi.cases.sla`` applies their precedence)."""
    found: dict[str, Any] = {}
    for key, entries, ref in (
        ("ttr_service", inventory.services, spec.service_id),
        ("ttr_site", inventory.sites, spec.site),
    ):
        match = next((e for e in entries if ref is not None and e.id == ref), None)
        if match is not None:
            found[key] = repair_time_text(match.ttr)
    return found


def _unchanged(inventory: Inventory, previous: Inventory | None) -> set[str]:
    """NTUs whose spec is the very object of ``previous`` (a reload reuses the specs of
    the entries it did not parse again, ``InventoryCache``) and whose repair times
    cannot have moved: their stored records stand."""
    if (
        previous is None
        or previous.services != inventory.services
        or previous.sites != inventory.sites
    ):
        return set()
    before = previous.by_id
    return {spec.id for spec in inventory.ntus if before.get(spec.id) is spec}


async def sync_inventory(
    sessionmaker: async_sessionmaker[AsyncSession],
    inventory: Inventory,
    *,
    previous: Inventory | None = None,
) -> InventoryDiff:
    """Make the case service's customers, NTUs and nodes match ``inventory``.

    ``previous``: the inventory this process stored last (a reload): the NTUs it has
    unchanged are not rebuilt, read back nor compared.
    """
    same = _unchanged(inventory, previous)
    return await store_inventory(
        sessionmaker,
        customers=[
            CustomerRecord(
                id=c.id,
                name=c.name,
                contract_status=c.contract_status,
                # The reports read the time zone there (``caseapi.reports``: "timezone").
                attributes={
                    **c.attributes,
                    **({"timezone": c.timezone} if c.timezone is not None else {}),
                },
                contacts=[
                    ContactRecord(
                        email=p.email,
                        name=p.name,
                        language=p.language,
                        roles=p.roles,
                        timezone=p.timezone,
                    )
                    for p in c.contacts
                ],
            )
            for c in inventory.customers
        ],
        ntus=[_ntu_record(spec, inventory) for spec in inventory.ntus if spec.id not in same],
        unchanged=same,
        nodes=[
            NodeRecord(id=n.id, kind=n.kind, address=str(n.address), parent=n.parent, site=n.site)
            for n in inventory.nodes
        ],
    )
