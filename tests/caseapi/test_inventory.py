"""sync_inventory: the stored customers, NTUs and nodes follow the records given."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from caseapi.customers.models import Customer
from caseapi.inventory import (
    CustomerRecord,
    InventoryDiff,
    NodeRecord,
    NtuRecord,
    sync_inventory,
)
from caseapi.ntus.models import Node, Ntu, NtuState
from tests.caseapi.conftest import START, Database

ACME = CustomerRecord(id="acme", name="Acme", attributes={"first_response": "2h"})
GLOBEX = CustomerRecord(id="globex", name="Globex", contract_status="expired")


def ntu(ntu_id: str, address: str, **changes: object) -> NtuRecord:
    values: dict[str, object] = {
        "id": ntu_id,
        "customer_id": "acme",
        "address": address,
        "service_id": f"svc-{ntu_id}",
        "site": f"site {ntu_id}",
        "probe": {"count": 5},
        "attributes": {"ttr": "4h"},
    }
    values.update(changes)
    return NtuRecord(**values)  # type: ignore[arg-type]


async def sync(
    database: Database,
    ntus: Sequence[NtuRecord],
    *,
    customers: Sequence[CustomerRecord] = (ACME, GLOBEX),
    nodes: Sequence[NodeRecord] = (),
) -> InventoryDiff:
    return await sync_inventory(database.sessionmaker, customers=customers, ntus=ntus, nodes=nodes)


async def stored(database: Database) -> dict[str, Ntu]:
    async with database.sessionmaker() as session:
        return {row.id: row for row in (await session.scalars(select(Ntu))).all()}


async def test_first_sync_adds_everything(database: Database) -> None:
    diff = await sync(database, [ntu("n-1", "10.0.0.1"), ntu("n-2", "10.0.0.2")])
    assert diff == InventoryDiff(added=("n-1", "n-2"), removed=(), changed=())
    assert diff.summary() == "2 added, 0 removed, 0 changed"
    assert bool(diff)
    rows = await stored(database)
    assert rows["n-1"].probe == {"count": 5}
    assert rows["n-1"].attributes == {"ttr": "4h"}
    async with database.sessionmaker() as session:
        acme = await session.get(Customer, "acme")
        assert acme is not None and acme.attributes == {"first_response": "2h"}
    again = await sync(database, [ntu("n-1", "10.0.0.1"), ntu("n-2", "10.0.0.2")])
    assert not again


async def test_removed_ntus_go_changed_ones_follow_and_states_stay(database: Database) -> None:
    await sync(database, [ntu("n-1", "10.0.0.1"), ntu("n-2", "10.0.0.2")])
    async with database.sessionmaker() as session:
        session.add(NtuState(ntu_id="n-2", status="up", since=START))
        await session.commit()
    diff = await sync(database, [ntu("n-1", "10.0.0.1", site="moved"), ntu("n-3", "10.0.0.3")])
    assert diff == InventoryDiff(added=("n-3",), removed=("n-2",), changed=("n-1",))
    rows = await stored(database)
    assert set(rows) == {"n-1", "n-3"}
    assert rows["n-1"].site == "moved"
    async with database.sessionmaker() as session:
        # An NTU that leaves and comes back keeps its history.
        assert await session.get(NtuState, "n-2") is not None


async def test_two_ntus_may_swap_addresses_in_one_edit(database: Database) -> None:
    await sync(database, [ntu("n-1", "10.0.0.1"), ntu("n-2", "10.0.0.2")])
    diff = await sync(database, [ntu("n-1", "10.0.0.2"), ntu("n-2", "10.0.0.1")])
    assert diff.changed == ("n-1", "n-2")
    rows = await stored(database)
    assert (rows["n-1"].address, rows["n-2"].address) == ("10.0.0.2", "10.0.0.1")


async def test_customers_are_updated_never_deleted(database: Database) -> None:
    await sync(database, [ntu("n-1", "10.0.0.1")])
    renamed = CustomerRecord(id="acme", name="Acme Ltd", contract_status="unpaid")
    await sync(database, [ntu("n-1", "10.0.0.1")], customers=[renamed])
    async with database.sessionmaker() as session:
        rows = {c.id: c for c in (await session.scalars(select(Customer))).all()}
    assert set(rows) == {"acme", "globex"}
    assert (rows["acme"].name, rows["acme"].contract_status) == ("Acme Ltd", "unpaid")


async def test_nodes_are_replaced(database: Database) -> None:
    pop = NodeRecord(id="pop-1", kind="pop", address="10.9.0.1", site="North")
    agg = NodeRecord(id="agg-1", kind="switch", address="10.9.0.2", parent="pop-1")
    await sync(database, [], nodes=[pop, agg])
    await sync(database, [], nodes=[NodeRecord(id="agg-1", kind="switch", address="10.9.0.3")])
    async with database.sessionmaker() as session:
        nodes = (await session.scalars(select(Node))).all()
    assert [(n.id, n.address, n.parent) for n in nodes] == [("agg-1", "10.9.0.3", None)]


async def test_a_duplicate_address_changes_nothing(database: Database) -> None:
    await sync(database, [ntu("n-1", "10.0.0.1")])
    with pytest.raises(IntegrityError):
        await sync(database, [ntu("n-1", "10.0.0.1"), ntu("n-2", "10.0.0.1")])
    assert set(await stored(database)) == {"n-1"}


async def test_ntus_the_caller_calls_unchanged_are_kept_without_being_compared(
    database: Database,
) -> None:
    await sync(database, [ntu("n-1", "10.0.0.1"), ntu("n-2", "10.0.0.2"), ntu("n-3", "10.0.0.3")])
    diff = await sync_inventory(
        database.sessionmaker,
        customers=(ACME, GLOBEX),
        ntus=[ntu("n-2", "10.0.0.2", site="moved"), ntu("n-4", "10.0.0.4")],
        nodes=(),
        unchanged={"n-1"},
    )
    assert diff == InventoryDiff(added=("n-4",), removed=("n-3",), changed=("n-2",))
    rows = await stored(database)
    assert sorted(rows) == ["n-1", "n-2", "n-4"]
    assert rows["n-1"].site == "site n-1"
    assert rows["n-2"].site == "moved"
