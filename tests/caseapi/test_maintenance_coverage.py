"""``active_coverage`` (the detector's contract) and scope resolution, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from caseapi.auth.principal import Principal, Role
from caseapi.core.database import session_scope
from caseapi.customers.models import Customer
from caseapi.maintenance.enums import MaintenanceBehaviour, MaintenanceKind
from caseapi.maintenance.repository import (
    active_coverage,
    affected_customers,
    get_window,
    windows_starting_or_ending,
)
from caseapi.maintenance.scope import InventoryIndex, InventoryRow, resolve
from caseapi.maintenance.service import MaintenanceDraft, MaintenanceService
from caseapi.ntus.models import Ntu
from nms.clock import FakeClock
from tests.caseapi.conftest import START, Database

ENGINEER = Principal(key_id=None, name="eve", role=Role.ENGINEER)
DAY = timedelta(days=1)
LATER = START + 20 * DAY  # planned windows start here (enough notice)

#: id -> (customer, service, parent). pop-1 > agg-1 > {a-1, b-1}; pop-1 > a-2.
INVENTORY: dict[str, tuple[str, str | None, str | None]] = {
    "pop-1": ("prov", None, None),
    "agg-1": ("prov", None, "pop-1"),
    "a-1": ("cust-a", "svc-a1", "agg-1"),
    "a-2": ("cust-a", "svc-a2", "pop-1"),
    "a-3": ("cust-a", "svc-shared", None),
    "b-1": ("cust-b", "svc-b1", "agg-1"),
    "b-2": ("cust-b", "svc-shared", None),
}


async def seed_inventory(database: Database) -> None:
    async with database.sessionmaker() as session:
        for customer in ("prov", "cust-a", "cust-b"):
            session.add(Customer(id=customer, name=customer, contract_status="active"))
        for number, (ntu_id, (customer, service, parent)) in enumerate(INVENTORY.items()):
            session.add(
                Ntu(
                    id=ntu_id,
                    customer_id=customer,
                    service_id=service,
                    site=None,
                    address=f"10.0.0.{number + 1}",
                    parent=parent,
                    probe={},
                    attributes={},
                )
            )
        await session.commit()


@pytest.fixture
async def maint(database: Database, clock: FakeClock) -> MaintenanceService:
    await seed_inventory(database)
    return MaintenanceService(sessionmaker=database.sessionmaker, clock=clock)


async def announce(
    maint: MaintenanceService,
    scope: dict[str, list[str]],
    *,
    start: Any = LATER,
    hours: float = 4,
    behaviour: MaintenanceBehaviour = MaintenanceBehaviour.MUTE,
) -> str:
    view = await maint.create(
        principal=ENGINEER,
        draft=MaintenanceDraft(
            title="work",
            description="",
            kind=MaintenanceKind.PLANNED,
            behaviour=behaviour,
            starts_at=start,
            ends_at=start + timedelta(hours=hours),
            scope=scope,
        ),
    )
    return view.window.ref


async def coverage(database: Database, at: Any) -> dict[str, Any]:
    async with session_scope(database.sessionmaker) as session:
        return await active_coverage(session, at=at)


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ({"ntus": ["a-1", "b-2"]}, {"a-1", "b-2"}),
        ({"nodes": ["pop-1"]}, {"pop-1", "agg-1", "a-1", "a-2", "b-1"}),
        ({"nodes": ["agg-1"]}, {"agg-1", "a-1", "b-1"}),
        ({"customers": ["cust-a"]}, {"a-1", "a-2", "a-3"}),
        ({"services": ["svc-shared"]}, {"a-3", "b-2"}),
        ({"services": ["svc-b1"], "ntus": ["a-2"]}, {"b-1", "a-2"}),
    ],
    ids=["ntus", "node-grandchildren", "node-children", "customer", "service", "mixed"],
)
async def test_each_scope_type_covers_its_ntus(
    database: Database, maint: MaintenanceService, scope: dict[str, list[str]], expected: set[str]
) -> None:
    ref = await announce(maint, scope)
    covered = await coverage(database, LATER + timedelta(hours=1))
    assert set(covered) == expected
    assert all(c.refs == (ref,) and c.behaviour == "mute" for c in covered.values())
    assert all(c.until == LATER + timedelta(hours=4) for c in covered.values())


async def test_skip_beats_mute_and_until_is_the_latest_end(
    database: Database, maint: MaintenanceService
) -> None:
    mute = await announce(maint, {"customers": ["cust-a"]}, hours=10)
    skip = await announce(maint, {"ntus": ["a-1"]}, hours=2, behaviour=MaintenanceBehaviour.SKIP)
    covered = await coverage(database, LATER + timedelta(hours=1))
    a1 = covered["a-1"]
    assert a1.behaviour == "skip"
    assert a1.until == LATER + timedelta(hours=10)
    assert set(a1.refs) == {mute, skip}
    assert covered["a-2"].behaviour == "mute" and covered["a-2"].refs == (mute,)
    # Once the skip window ends, the mute window alone covers a-1.
    later = await coverage(database, LATER + timedelta(hours=3))
    assert later["a-1"].behaviour == "mute" and later["a-1"].refs == (mute,)


async def test_boundaries_start_covered_end_not(
    database: Database, maint: MaintenanceService
) -> None:
    await announce(maint, {"ntus": ["a-1"]})
    assert await coverage(database, LATER - timedelta(microseconds=1)) == {}
    assert set(await coverage(database, LATER)) == {"a-1"}
    assert set(await coverage(database, LATER + timedelta(hours=4, microseconds=-1))) == {"a-1"}
    assert await coverage(database, LATER + timedelta(hours=4)) == {}


async def test_cancelled_and_ended_windows_do_not_cover(
    database: Database, maint: MaintenanceService, clock: FakeClock
) -> None:
    ref = await announce(maint, {"ntus": ["a-1"]})
    await announce(maint, {"ntus": ["b-1"]}, start=LATER + DAY)
    await maint.cancel(principal=ENGINEER, ref=ref)
    assert await coverage(database, LATER + timedelta(hours=1)) == {}
    assert await coverage(database, LATER + DAY + timedelta(hours=5)) == {}  # ended
    assert set(await coverage(database, LATER + DAY)) == {"b-1"}


@contextmanager
def count_statements(database: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(database.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", record)


async def test_query_budget(database: Database, maint: MaintenanceService) -> None:
    def selects(statements: list[str]) -> list[str]:
        return [s for s in statements if s.lstrip().upper().startswith("SELECT")]

    with count_statements(database) as none:
        assert await coverage(database, START) == {}
    assert len(selects(none)) == 1  # windows only: no active window, no inventory query
    await announce(maint, {"ntus": ["a-1"]})
    with count_statements(database) as ntus_only:
        assert set(await coverage(database, LATER)) == {"a-1"}
    assert len(selects(ntus_only)) == 1  # NTU scopes need no inventory
    await announce(maint, {"nodes": ["pop-1"]})
    with count_statements(database) as with_node:
        assert len(await coverage(database, LATER)) == 5
    inventory = selects(with_node)[1]
    assert len(selects(with_node)) == 2 and "attributes" not in inventory


def test_tree_walk_survives_a_cycle() -> None:
    rows = [
        InventoryRow(id="x", customer_id="c", service_id=None, parent="y"),
        InventoryRow(id="y", customer_id="c", service_id=None, parent="x"),
        InventoryRow(id="z", customer_id="c", service_id=None, parent="y"),
    ]
    assert resolve({"nodes": ["x"]}, InventoryIndex.build(rows)) == {"x", "y", "z"}


async def test_transitions_and_affected_customers_for_notices(
    database: Database, maint: MaintenanceService
) -> None:
    ref = await announce(maint, {"nodes": ["agg-1"], "ntus": ["b-2"]})
    async with session_scope(database.sessionmaker) as session:
        started = await windows_starting_or_ending(
            session, since=LATER - timedelta(minutes=1), until=LATER
        )
        ended = await windows_starting_or_ending(
            session, since=LATER, until=LATER + timedelta(hours=4)
        )
        window = await get_window(session, ref=ref)
        assert window is not None
        affected = await affected_customers(session, window=window)
    assert [(t.event, t.window.ref) for t in started] == [("started", ref)]
    assert [(t.event, t.at) for t in ended] == [("ended", LATER + timedelta(hours=4))]
    assert affected == {"prov": ["agg-1"], "cust-a": ["a-1"], "cust-b": ["b-1", "b-2"]}
