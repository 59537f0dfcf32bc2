"""CaseRelay: one CaseChange per case timeline row, in id order, at least once.

Cases are made by the real CaseService on both backends (SQLite and PostgreSQL), so
the rows, their order and the enum columns are what production reads.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from caseapi.app import CaseServices, build_services
from caseapi.cases.enums import CaseEventKind
from caseapi.cases.models import CaseEvent
from caseapi.incidents import ntu_down_key
from nms.bus.case_relay import CaseRelay
from nms.bus.wire import CaseChange, Message, decode, encode
from nms.clock import FakeClock
from tests.caseapi.conftest import START, Database, incident


class Recorder:
    """The relay's ``send``: records every change; can be told to fail on one."""

    def __init__(self) -> None:
        self.sent: list[CaseChange] = []
        self.fail_on: set[int] = set()  # event ids whose (next) send raises
        self.attempts: list[int] = []
        self.changed = asyncio.Event()

    async def __call__(self, change: CaseChange) -> None:
        self.attempts.append(change.event_id)
        if change.event_id in self.fail_on:
            self.fail_on.discard(change.event_id)
            raise ConnectionError("broker gone")
        self.sent.append(change)
        self.changed.set()

    async def wait_for(self, count: int) -> None:
        while len(self.sent) < count:
            await self.changed.wait()
            self.changed.clear()

    @property
    def ids(self) -> list[int]:
        return [c.event_id for c in self.sent]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=START)


@pytest.fixture
def service(database: Database, clock: FakeClock) -> CaseServices:
    return build_services(sessionmaker=database.sessionmaker, clock=clock)


def relay_for(
    database: Database, recorder: Recorder, *, batch: int = 500, clock: FakeClock | None = None
) -> CaseRelay:
    return CaseRelay(
        sessionmaker=database.sessionmaker,
        send=recorder,
        clock=clock or FakeClock(start=START),
        batch=batch,
    )


async def asleep(clock: FakeClock) -> None:
    """Until the relay waits on the clock (its queries run on real time meanwhile)."""
    async with asyncio.timeout(10):
        while clock.sleepers == 0:  # noqa: ASYNC110 - the sleeper count is the signal
            await asyncio.sleep(0.001)


async def event_ids(database: Database) -> list[int]:
    """Every timeline row's id, in order."""
    async with database.sessionmaker() as session:
        return list((await session.scalars(select(CaseEvent.id).order_by(CaseEvent.id))).all())


async def open_and_solve(service: CaseServices, clock: FakeClock, ntu_id: str) -> str:
    ref = await service.incidents.open_incident(incident(ntu_id, customer_id=f"cust-{ntu_id}"))
    clock.advance(timedelta(minutes=5))
    solved = await service.incidents.restore_incident(
        dedup_key=ntu_down_key(ntu_id), restored_at=clock.now()
    )
    assert solved == ref
    return ref


async def test_one_change_per_timeline_row_in_id_order(
    database: Database, service: CaseServices, clock: FakeClock, recorder: Recorder
) -> None:
    relay = relay_for(database, recorder)
    await relay.start_after_newest()  # empty database: from the first row
    ref = await open_and_solve(service, clock, "ntu-1")
    timeline = await service.cases.get_timeline(ref)
    assert [str(event.kind) for event in timeline] == ["opened", "restored"]

    assert await relay.relay_once() == len(timeline)
    assert recorder.ids == [event.id for event in timeline]
    assert [c.kind for c in recorder.sent] == ["opened", "restored"]
    for change, event in zip(recorder.sent, timeline, strict=True):
        assert change.ref == ref
        # The case's current status and priority, not the one at the time of the row.
        assert change.status == "solved"
        assert change.priority == "P1"
        assert change.ntu_id == "ntu-1"
        assert change.customer_id == "cust-ntu-1"
        assert change.at == event.at
        assert change.at.tzinfo is not None
    assert await relay.relay_once() == 0
    assert len(recorder.sent) == len(timeline)


async def test_rows_of_several_cases_interleave_by_id(
    database: Database, service: CaseServices, clock: FakeClock, recorder: Recorder
) -> None:
    relay = relay_for(database, recorder)
    await relay.start_after_newest()
    ref_a = await service.incidents.open_incident(
        incident("ntu-a", customer_id="acme", priority="P2")
    )
    ref_b = await service.incidents.open_incident(incident("ntu-b", customer_id="globex"))
    clock.advance(60)
    await service.incidents.restore_incident(
        dedup_key=ntu_down_key("ntu-a"), restored_at=clock.now()
    )

    await relay.relay_once()
    expected = sorted(
        [(e.id, ref_a) for e in await service.cases.get_timeline(ref_a)]
        + [(e.id, ref_b) for e in await service.cases.get_timeline(ref_b)]
    )
    assert [(c.event_id, c.ref) for c in recorder.sent] == expected
    assert recorder.sent[0].ref == ref_a and recorder.sent[1].ref == ref_b
    by_ref = {c.ref: c for c in recorder.sent}
    assert (by_ref[ref_a].status, by_ref[ref_a].priority) == ("solved", "P2")
    assert (by_ref[ref_a].ntu_id, by_ref[ref_a].customer_id) == ("ntu-a", "acme")
    assert (by_ref[ref_b].status, by_ref[ref_b].priority) == ("new", "P1")
    assert (by_ref[ref_b].ntu_id, by_ref[ref_b].customer_id) == ("ntu-b", "globex")


async def test_changes_go_on_the_wire(
    database: Database, service: CaseServices, clock: FakeClock, recorder: Recorder
) -> None:
    relay = relay_for(database, recorder)
    await relay.start_after_newest()
    await open_and_solve(service, clock, "ntu-1")
    await relay.relay_once()
    for seq, change in enumerate(recorder.sent, start=1):
        message = Message(source="detector-x", seq=seq, sent_at=START, payload=change)
        assert decode(encode(message)) == message


async def test_a_new_relay_skips_history(
    database: Database, service: CaseServices, clock: FakeClock, recorder: Recorder
) -> None:
    await open_and_solve(service, clock, "ntu-old")
    relay = relay_for(database, recorder)
    await relay.start_after_newest()
    assert await relay.relay_once() == 0

    ref = await service.incidents.open_incident(incident("ntu-new"))
    assert await relay.relay_once() == 1
    assert [(c.ref, c.kind, c.ntu_id) for c in recorder.sent] == [(ref, "opened", "ntu-new")]


async def test_first_run_without_start_also_skips_history(
    database: Database, service: CaseServices, clock: FakeClock, recorder: Recorder
) -> None:
    # A new leader's first relay_once starts after the newest row (no replay).
    await open_and_solve(service, clock, "ntu-old")
    relay = relay_for(database, recorder)
    assert await relay.relay_once() == 0
    await service.incidents.open_incident(incident("ntu-new"))
    assert await relay.relay_once() == 1
    assert recorder.sent[0].ntu_id == "ntu-new"


async def test_a_failed_send_is_sent_again_next_run(
    database: Database, service: CaseServices, clock: FakeClock, recorder: Recorder
) -> None:
    relay = relay_for(database, recorder)
    await relay.start_after_newest()
    for ntu in ("ntu-1", "ntu-2"):
        await open_and_solve(service, clock, ntu)
    all_ids = await event_ids(database)
    assert len(all_ids) >= 4
    failing = all_ids[2]
    recorder.fail_on = {failing}

    with pytest.raises(ConnectionError):
        await relay.relay_once()
    assert recorder.ids == all_ids[:2]  # the rows before the failure went out once

    assert await relay.relay_once() == len(all_ids) - 2
    assert recorder.ids == all_ids  # from the failed row on, nothing lost, nothing twice
    assert recorder.attempts == [*all_ids[:3], *all_ids[2:]]


async def test_batch_limit(
    database: Database, service: CaseServices, clock: FakeClock, recorder: Recorder
) -> None:
    relay = relay_for(database, recorder, batch=2)
    await relay.start_after_newest()
    for ntu in ("ntu-1", "ntu-2", "ntu-3"):
        await service.incidents.open_incident(incident(ntu))
        clock.advance(1)
    await service.incidents.restore_incident(
        dedup_key=ntu_down_key("ntu-1"), restored_at=clock.now()
    )
    total = len(await event_ids(database))
    assert total >= 4

    counts = []
    while (n := await relay.relay_once()) > 0:
        counts.append(n)
        assert n <= 2
    assert sum(counts) == total
    assert counts[:-1] == [2] * (len(counts) - 1)
    assert recorder.ids == sorted(recorder.ids) and len(set(recorder.ids)) == total


async def test_run_drains_full_batches_and_survives_a_failure(
    database: Database, service: CaseServices, clock: FakeClock, recorder: Recorder
) -> None:
    relay = relay_for(database, recorder, batch=2, clock=clock)
    await relay.start_after_newest()
    for ntu in ("ntu-1", "ntu-2", "ntu-3"):
        await open_and_solve(service, clock, ntu)
    all_ids = await event_ids(database)
    third = all_ids[2]
    recorder.fail_on = {third}  # fails once; the loop logs it and retries

    task = asyncio.create_task(relay.run(5.0))
    try:
        await asleep(clock)  # the first run: full batches until the failure
        assert recorder.ids == all_ids[:2]
        await clock.run_for(4.9)  # the period has not passed: nothing is read
        assert recorder.ids == all_ids[:2]
        clock.advance(0.1)
        await clock.settle()
        await asleep(clock)  # the second run: from the failed row on, to the end
        assert recorder.ids == all_ids
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert recorder.attempts.count(third) == 2


async def test_a_skipped_id_is_watched_for_gap_timeout_on_the_clock(
    database: Database, service: CaseServices, clock: FakeClock, recorder: Recorder
) -> None:
    # Rows with chosen ids stand for transactions that commit out of id order.
    ref = await service.incidents.open_incident(incident("ntu-1"))
    case_id = (await service.cases.get_case(ref)).id
    relay = CaseRelay(
        sessionmaker=database.sessionmaker, send=recorder, clock=clock, gap_timeout=30.0
    )
    await relay.start_after_newest()
    base = max(await event_ids(database))

    async def commit_row(event_id: int) -> None:
        async with database.sessionmaker() as session:
            session.add(
                CaseEvent(
                    id=event_id,
                    case_id=case_id,
                    at=START,
                    kind=CaseEventKind.COMMENT_ADDED,
                    actor="api",
                    data={},
                )
            )
            await session.commit()

    await commit_row(base + 3)  # base+1 and base+2 are skipped over: watched from now
    assert await relay.relay_once() == 1
    clock.advance(29.0)
    await commit_row(base + 1)  # within gap_timeout: still relayed
    assert await relay.relay_once() == 1
    clock.advance(1.0)
    await commit_row(base + 2)  # gap_timeout has passed: counted as rolled back
    assert await relay.relay_once() == 0
    assert recorder.ids == [base + 3, base + 1]


# PostgreSQL only: SQLite has one writer at a time, so ids become visible in order.
@pytest.mark.parametrize(
    "database", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_a_row_committed_late_is_not_lost(
    database: Database, service: CaseServices, recorder: Recorder
) -> None:
    assert database.backend == "postgres"
    ref_a = await service.incidents.open_incident(incident("ntu-a"))
    case_a = await service.cases.get_case(ref_a)
    relay = relay_for(database, recorder)
    await relay.start_after_newest()

    async with database.sessionmaker() as slow:  # e.g. an API replica adding a comment
        slow.add(
            CaseEvent(
                case_id=case_a.id, at=START, kind=CaseEventKind.COMMENT_ADDED, actor="api", data={}
            )
        )
        await slow.flush()  # takes the next id; not visible until commit
        await service.incidents.open_incident(incident("ntu-b"))  # a later id, committed first
        await relay.relay_once()
        await slow.commit()
    await relay.relay_once()
    # Relayed once each: the row that committed first, then the late one.
    late, first = (await event_ids(database))[1:]
    assert recorder.ids == [first, late]
    await relay.relay_once()
    assert len(recorder.ids) == 2  # nothing twice
