"""A batch's states and statuses in one transaction when the case service shares the
detector's database (``build_detector``: ``nms run`` and the distributed detector)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.incidents import IncidentService, NtuStatusUpdate
from caseapi.ntus.models import NtuState
from nms.app.detector_service import build_detector
from nms.app.settings import Settings
from nms.clock import FakeClock
from nms.detector.engine import Detector
from nms.detector.models import DetectorNtuState
from tests.caseapi.conftest import Database
from tests.nms.detector.helpers import pings, store_inventory
from tests.nms.detector.test_engine import INTERVAL, inventory, result


async def _setup(database: Database) -> tuple[Detector, IncidentService, FakeClock]:
    clock = FakeClock()
    await store_inventory(database.sessionmaker, inventory())
    service = IncidentService(sessionmaker=database.sessionmaker, clock=clock)
    detector = build_detector(
        Settings(), sessionmaker=database.sessionmaker, clock=clock, sink=service
    )
    await detector.load(inventory())
    return detector, service, clock


async def _rows(database: Database) -> tuple[dict[str, str], dict[str, str]]:
    """(saved machine status, public status) by NTU."""
    async with database.sessionmaker() as session:
        saved = await session.execute(select(DetectorNtuState.ntu_id, DetectorNtuState.status))
        shown = await session.execute(select(NtuState.ntu_id, NtuState.status))
        return {k: v for k, v in saved}, {k: v for k, v in shown}


async def test_one_transaction_writes_a_batchs_states_and_statuses(database: Database) -> None:
    detector, _, clock = await _setup(database)
    commits: list[object] = []

    def committed(connection: object) -> None:
        commits.append(connection)

    event.listen(database.engine.sync_engine, "commit", committed)
    try:
        await detector.observe(pings(result(clock, n, True) for n in detector.ntus))
    finally:
        event.remove(database.engine.sync_engine, "commit", committed)
    assert len(commits) == 1
    saved, shown = await _rows(database)
    assert saved == shown == {"n1": "up", "n2": "up", "n3": "up"}


async def test_a_failed_status_write_keeps_neither_and_the_next_batch_writes_both(
    database: Database,
) -> None:
    detector, service, clock = await _setup(database)
    failing = True

    async def write(session: AsyncSession, updates: Sequence[NtuStatusUpdate]) -> Any:
        await service.write_ntu_status(session, updates)
        if failing:
            raise ConnectionError("status write failed")

    detector._statuses = write
    try:
        await detector.observe(pings([result(clock, "n1", True)]))
    except ConnectionError:
        pass
    else:
        raise AssertionError("the failure must reach the caller")
    assert await _rows(database) == ({}, {})  # the state was not kept without its status
    failing = False
    clock.advance(INTERVAL)
    await detector.observe(pings([result(clock, "n2", True)]))
    saved, shown = await _rows(database)
    assert saved == shown == {"n1": "up", "n2": "up"}
