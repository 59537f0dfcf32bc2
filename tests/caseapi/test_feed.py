"""CaseFeed: every timeline row once per acknowledgement, in id order, late rows too."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from caseapi.cases.enums import CaseEventKind
from caseapi.cases.models import CaseEvent
from caseapi.cases.service import CaseService
from caseapi.feed import CaseFeed, FeedEntry, entries_after, newest_event_id
from caseapi.incidents import IncidentService, ntu_down_key
from nms.clock import FakeClock
from tests.caseapi.conftest import START, Database, incident


async def event_ids(database: Database) -> list[int]:
    async with database.sessionmaker() as session:
        return list((await session.scalars(select(CaseEvent.id).order_by(CaseEvent.id))).all())


async def open_and_solve(incidents: IncidentService, clock: FakeClock, ntu_id: str) -> str:
    ref = await incidents.open_incident(incident(ntu_id, customer_id=f"cust-{ntu_id}"))
    clock.advance(timedelta(minutes=5))
    await incidents.restore_incident(dedup_key=ntu_down_key(ntu_id), restored_at=clock.now())
    return ref


async def drain(feed: CaseFeed) -> list[FeedEntry]:
    """Read and acknowledge until nothing is new."""
    seen: list[FeedEntry] = []
    while entries := await feed.read():
        for entry in entries:
            feed.ack(entry)
        seen += entries
    return seen


async def test_entries_carry_the_cases_current_status(
    database: Database, service: CaseService, incidents: IncidentService, clock: FakeClock
) -> None:
    feed = CaseFeed(sessionmaker=database.sessionmaker)
    await feed.start_after_newest()
    assert feed.last_id == 0
    ref = await open_and_solve(incidents, clock, "ntu-1")
    entries = await drain(feed)
    timeline = await service.get_timeline(ref)
    assert [e.event_id for e in entries] == [e.id for e in timeline]
    assert [e.kind for e in entries] == ["opened", "restored"]
    for entry, event in zip(entries, timeline, strict=True):
        assert (entry.ref, entry.status, entry.priority) == (ref, "solved", "P1")
        assert (entry.ntu_id, entry.customer_id) == ("ntu-1", "cust-ntu-1")
        assert entry.at == event.at and entry.at.tzinfo is not None
    assert feed.last_id == timeline[-1].id
    assert await newest_event_id(database.sessionmaker) == timeline[-1].id


async def test_a_new_feed_skips_history_even_without_start(
    database: Database, incidents: IncidentService, clock: FakeClock
) -> None:
    await open_and_solve(incidents, clock, "ntu-old")
    feed = CaseFeed(sessionmaker=database.sessionmaker)
    assert await feed.read() == []
    await incidents.open_incident(incident("ntu-new"))
    assert [e.ntu_id for e in await drain(feed)] == ["ntu-new"]


async def test_what_is_not_acknowledged_comes_again(
    database: Database, incidents: IncidentService, clock: FakeClock
) -> None:
    feed = CaseFeed(sessionmaker=database.sessionmaker)
    await feed.start_after_newest()
    for ntu in ("ntu-1", "ntu-2"):
        await open_and_solve(incidents, clock, ntu)
    all_ids = await event_ids(database)
    first = await feed.read()
    for entry in first[:2]:  # the third one "failed to go out"
        feed.ack(entry)
    assert [e.event_id for e in await drain(feed)] == all_ids[2:]


async def test_reads_are_limited_to_the_batch(
    database: Database, incidents: IncidentService
) -> None:
    feed = CaseFeed(sessionmaker=database.sessionmaker, batch=2)
    await feed.start_after_newest()
    for ntu in ("ntu-1", "ntu-2", "ntu-3"):
        await incidents.open_incident(incident(ntu))
    assert len(await feed.read()) == 2
    assert [e.event_id for e in await drain(feed)] == await event_ids(database)
    assert await entries_after(database.sessionmaker, after=0, limit=1) != []
    with pytest.raises(ValueError, match="batch"):
        CaseFeed(sessionmaker=database.sessionmaker, batch=0)


# PostgreSQL only: SQLite has one writer at a time, so ids become visible in order.
@pytest.mark.parametrize(
    "database", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_a_row_committed_late_is_not_lost(
    database: Database, service: CaseService, incidents: IncidentService
) -> None:
    case_a = await service.get_case(await incidents.open_incident(incident("ntu-a")))
    feed = CaseFeed(sessionmaker=database.sessionmaker)
    await feed.start_after_newest()
    async with database.sessionmaker() as slow:  # e.g. an API replica adding a comment
        slow.add(
            CaseEvent(
                case_id=case_a.id, at=START, kind=CaseEventKind.COMMENT_ADDED, actor="api", data={}
            )
        )
        await slow.flush()  # takes the next id; not visible until commit
        await incidents.open_incident(incident("ntu-b"))  # a later id, committed first
        early = await drain(feed)
        await slow.commit()
    late = await drain(feed)
    first, after = [e.event_id for e in early], [e.event_id for e in late]
    assert sorted(first + after) == (await event_ids(database))[1:]
    assert len(after) == 1 and after[0] < first[0]
    assert await drain(feed) == []  # nothing twice


async def test_a_gap_is_given_up_after_the_timeout(
    database: Database, incidents: IncidentService
) -> None:
    now = [0.0]
    feed = CaseFeed(sessionmaker=database.sessionmaker, gap_timeout=10, clock=lambda: now[0])
    await feed.start_after_newest()
    await incidents.open_incident(incident("ntu-1"))
    ids = await event_ids(database)
    # Acknowledge as if the row read had a higher id: the ids below it are gaps,
    # the real row among them, so it comes again until the gap times out.
    (entry,) = await feed.read()
    feed.ack(replace(entry, event_id=ids[-1] + 3))
    assert feed.last_id == ids[-1] + 3
    now[0] = 5.0
    assert [e.event_id for e in await feed.read()] == ids
    now[0] = 11.0
    assert await feed.read() == []  # the gaps expired: no query for them any more
