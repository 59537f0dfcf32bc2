"""``RowUpsert`` (and ``upsert``, built on it) stores what SQLAlchemy's own insert
stores: the columns' own bind processors and defaults run."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any, cast

from sqlalchemy import Table, insert, select, text

from caseapi.core.upsert import RowUpsert, upsert
from caseapi.customers.models import Customer
from caseapi.ntus.models import Ntu, NtuState
from tests.caseapi.conftest import START, Database

TABLE = cast(Table, NtuState.__table__)
COLUMNS = ("ntu_id", "status", "since", "outage_start", "icmp_filtered", "rtt_avg", "reboots")


async def _stored(database: Database) -> dict[str, tuple[Any, ...]]:
    """The rows as the database holds them (no result processors)."""
    sql = text(f"SELECT {', '.join(COLUMNS)} FROM ntu_states ORDER BY ntu_id")
    async with database.sessionmaker() as session:
        rows = (await session.execute(sql)).all()
    return {row[0]: tuple(row[1:]) for row in rows}


async def test_row_upsert_stores_what_an_insert_stores_and_updates_existing_rows(
    database: Database,
) -> None:
    # Not UTC: the UTCDateTime processor must convert it, as it does for an insert.
    since = START.astimezone(timezone(timedelta(hours=2)))
    values = ("up", since, None, True, 0.012, 3)
    rows = RowUpsert(TABLE, COLUMNS, ["ntu_id"])
    async with database.sessionmaker() as session:
        await session.execute(insert(TABLE), [dict(zip(COLUMNS, ("a", *values), strict=True))])
        await rows.execute(session, [("b", *values)])
        await upsert(session, TABLE, [dict(zip(COLUMNS, ("c", *values), strict=True))], ["ntu_id"])
        await session.commit()
    stored = await _stored(database)
    assert stored["a"] == stored["b"] == stored["c"]
    async with database.sessionmaker() as session:
        await rows.execute(session, [("b", "down", START, START, False, None, 4)])
        await rows.execute(session, [])  # nothing to do
        await session.commit()
    async with database.sessionmaker() as session:
        state = await session.get(NtuState, "b")
        assert state is not None
        assert (state.status, state.since, state.outage_start, state.icmp_filtered) == (
            "down",
            START,
            START,
            False,
        )
        assert (state.rtt_avg, state.reboots) == (None, 4)


async def test_a_column_left_out_gets_its_default_on_insert_and_is_kept_on_update(
    database: Database,
) -> None:
    # ``probe`` and ``attributes`` default to a new dict (a callable default).
    ntus = cast(Table, Ntu.__table__)
    async with database.sessionmaker() as session:
        await upsert(session, Customer, [{"id": "c", "name": "C"}], ["id"])
        await upsert(
            session, Ntu, [{"id": "n", "customer_id": "c", "address": "192.0.2.1"}], ["id"]
        )
        await session.execute(insert(ntus), [{"id": "m", "customer_id": "c", "address": "x"}])
        await session.commit()
    async with database.sessionmaker() as session:
        await upsert(
            session, Ntu, [{"id": "n", "customer_id": "c", "address": "192.0.2.1"}], ["id"]
        )
        await session.execute(
            ntus.update().where(ntus.c.id == "n").values(attributes={"rack": "1"})
        )
        await upsert(
            session, Ntu, [{"id": "n", "customer_id": "c", "address": "192.0.2.2"}], ["id"]
        )
        await session.commit()
    async with database.sessionmaker() as session:
        rows = (await session.execute(select(ntus).order_by(ntus.c.id))).all()
    assert [(r.id, r.address, r.probe, r.attributes) for r in rows] == [
        ("m", "x", {}, {}),
        ("n", "192.0.2.2", {}, {"rack": "1"}),
    ]
