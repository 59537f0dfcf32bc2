"""``RowUpsert`` stores what ``upsert`` stores: the columns' own bind processors run."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any, cast

from sqlalchemy import Table, text

from caseapi.core.upsert import RowUpsert, upsert
from caseapi.ntus.models import NtuState
from tests.caseapi.conftest import START, Database

TABLE = cast(Table, NtuState.__table__)
COLUMNS = ("ntu_id", "status", "since", "outage_start", "icmp_filtered", "rtt_avg", "reboots")


async def _stored(database: Database) -> dict[str, tuple[Any, ...]]:
    """The rows as the database holds them (no result processors)."""
    sql = text(f"SELECT {', '.join(COLUMNS)} FROM ntu_states ORDER BY ntu_id")
    async with database.sessionmaker() as session:
        rows = (await session.execute(sql)).all()
    return {row[0]: tuple(row[1:]) for row in rows}


async def test_row_upsert_stores_what_upsert_stores_and_updates_existing_rows(
    database: Database,
) -> None:
    # Not UTC: the UTCDateTime processor must convert it, as it does for ``upsert``.
    since = START.astimezone(timezone(timedelta(hours=2)))
    values = ("up", since, None, True, 0.012, 3)
    rows = RowUpsert(TABLE, COLUMNS, ["ntu_id"])
    async with database.sessionmaker() as session:
        await upsert(session, TABLE, [dict(zip(COLUMNS, ("a", *values), strict=True))], ["ntu_id"])
        await rows.execute(session, [("b", *values)])
        await session.commit()
    stored = await _stored(database)
    assert stored["a"] == stored["b"]
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
