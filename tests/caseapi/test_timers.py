"""The durable ticker: restarts lose nothing, two tickers act once per deadline."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from caseapi.cases.enums import CaseEventKind, CaseStatus
from caseapi.cases.service import CaseService
from caseapi.cases.ticker import CaseTicker
from caseapi.core.database import make_engine, make_sessionmaker
from caseapi.incidents import IncidentService
from nms.clock import FakeClock
from tests.caseapi.conftest import START, Database, incident
from tests.caseapi.lifecycle_fixtures import events_of, publish_rfo

H = timedelta(hours=1)


async def test_restart_in_the_monitoring_window_still_closes_on_time(
    database: Database, clock: FakeClock
) -> None:
    first = IncidentService(sessionmaker=database.sessionmaker, clock=clock)
    request = incident("ntu-1")
    ref = await first.open_incident(request)
    await first.restore_incident(dedup_key=request.dedup_key, restored_at=START)
    await publish_rfo(database, ref, START)
    await CaseTicker(sessionmaker=database.sessionmaker, clock=clock).run_once()
    clock.advance(12 * H)
    del first  # "the process stops"; a new one starts with a new engine
    engine = make_engine(database.url)
    try:
        sessionmaker = make_sessionmaker(engine)
        second = CaseService(sessionmaker=sessionmaker, clock=clock)
        ticker = CaseTicker(sessionmaker=sessionmaker, clock=clock, sla=second.sla)
        clock.advance(12 * H - timedelta(seconds=1))
        await ticker.run_once()
        assert (await second.get_case(ref)).status is CaseStatus.SOLVED
        clock.advance(timedelta(seconds=1))
        assert await ticker.run_once() == 1
        case = await second.get_case(ref)
        assert case.status is CaseStatus.CLOSED
        assert case.closed_at == START + 24 * H
    finally:
        await engine.dispose()


async def test_two_tickers_act_on_each_deadline_once(
    database: Database, service: CaseService, incidents: IncidentService, clock: FakeClock
) -> None:
    # PostgreSQL: the tickers share the due cases (SKIP LOCKED); SQLite serialises them.
    refs = [await incidents.open_incident(incident(f"ntu-{n}")) for n in range(40)]
    clock.advance(timedelta(minutes=30))
    engines = [make_engine(database.url) for _ in range(2)]
    try:
        tickers = [
            CaseTicker(sessionmaker=make_sessionmaker(e), clock=clock, batch_size=5)
            for e in engines
        ]
        counts = await asyncio.gather(*(t.run_once() for t in tickers))
    finally:
        for engine in engines:
            await engine.dispose()
    assert sum(counts) == 40
    for ref in refs:
        assert len(await events_of(service, ref, CaseEventKind.SLA_BREACHED)) == 1
        assert len(await events_of(service, ref, CaseEventKind.ESCALATED)) == 1


async def test_run_loop_ticks_and_stops_on_cancel(
    database: Database, service: CaseService, incidents: IncidentService
) -> None:
    clock = FakeClock(start=START)
    ref = await incidents.open_incident(incident("ntu-1"))
    ticker = CaseTicker(sessionmaker=database.sessionmaker, clock=clock)
    clock.advance(timedelta(hours=2))
    task = asyncio.create_task(ticker.run(timedelta(milliseconds=10)))
    for _ in range(200):
        await asyncio.sleep(0.01)
        if (await service.get_case(ref)).first_response_breached_at is not None:
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await service.get_case(ref)).first_response_breached_at is not None
    with pytest.raises(ValueError, match="interval"):
        await ticker.run(timedelta(0))
