"""The NTU repository's counts by status and the change marker of NTU states."""

from __future__ import annotations

from datetime import timedelta

from caseapi.core.database import session_scope
from caseapi.ntus import repository
from caseapi.ntus.models import Ntu, NtuState
from tests.caseapi.conftest import START, Database
from tests.caseapi.lifecycle_fixtures import seed, set_ntu_status


async def _counts(database: Database) -> dict[str, int]:
    async with session_scope(database.sessionmaker) as session:
        return await repository.count_by_status(session)


async def _marker(database: Database) -> tuple[object, ...]:
    async with session_scope(database.sessionmaker) as session:
        return await repository.status_marker(session)


async def test_every_ntu_is_counted_once_and_unjudged_ones_are_unknown(
    database: Database,
) -> None:
    await seed(database)
    assert await _counts(database) == {"up": 1, "unknown": 2}
    async with database.sessionmaker() as session:
        # A node's status and a state kept for an NTU gone from the inventory: not NTUs.
        session.add(NtuState(ntu_id="pop-1", status="down", since=START))
        session.add(NtuState(ntu_id="ntu-2", status="suspect", since=START))
        await session.commit()
    assert await _counts(database) == {"up": 1, "suspect": 1, "unknown": 1}


async def test_the_marker_moves_with_a_status_or_the_inventory_and_only_then(
    database: Database,
) -> None:
    await seed(database)
    first = await _marker(database)
    assert await _marker(database) == first
    async with database.sessionmaker() as session:
        state = await session.get(NtuState, "ntu-1")
        assert state is not None
        state.last_observation_at = START + timedelta(seconds=30)  # a probe: no change
        state.rtt_avg = 0.004
        await session.commit()
    assert await _marker(database) == first
    await set_ntu_status(database, "ntu-1", "down")
    second = await _marker(database)
    assert second != first
    async with database.sessionmaker() as session:
        session.add(Ntu(id="ntu-3", customer_id="cust-1", address="10.0.0.3"))
        await session.commit()
    assert await _marker(database) != second
