"""The engineers' queues (``caseapi.cases.queues``) over the repository's filters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from caseapi.auth.principal import Principal, Role
from caseapi.cases.enums import CasePriority, CaseStatus, CommitmentKind, RootCauseCategory
from caseapi.cases.models import Case
from caseapi.cases.queues import CountsCache, Queue, QueueCounts, next_deadline, queue_filters
from caseapi.cases.repository import CaseFilters
from caseapi.cases.service import COUNTS_TTL, CaseService
from caseapi.cases.snapshot import (
    Assign,
    Commitment,
    Escalate,
    Event,
    SetCommitment,
    Transition,
)
from nms.clock import FakeClock
from tests.caseapi.conftest import START, Database
from tests.caseapi.lifecycle_fixtures import advance, seed, ticker
from tests.caseapi.web.workspace_fixtures import open_case

ENGINEER = Principal(key_id=None, name="eve", role=Role.ENGINEER, customer_id=None)


def _always(event: Event) -> Callable[[Case], Event]:
    return lambda _: event


#: A wider "at risk" horizon than the default 15 min: the 30 min first responses of
#: these cases are at risk from the start.
SOON = timedelta(minutes=30)


async def _queue(service: CaseService, queue: Queue, **base: object) -> list[str]:
    filters = queue_filters(
        queue,
        assignee="eve",
        now=service.clock.now(),
        base=CaseFilters(**base),  # type: ignore[arg-type]
        at_risk_within=SOON,
    )
    page = await service.queue_page(filters=filters, order="oldest", offset=0, limit=50)
    return [row.case.ref for row in page.rows]


async def test_each_queue_holds_its_cases(
    database: Database, service: CaseService, clock: FakeClock
) -> None:
    await seed(database)
    new = await open_case(service, summary="new", priority=CasePriority.P1)
    mine = await open_case(service, summary="mine")
    waiting = await open_case(service, summary="waiting", ntu="ntu-2")
    supplier = await open_case(service, summary="supplier", ntu="ntu-2")
    solved = await open_case(service, summary="solved", ntu=None)
    escalated = await open_case(service, summary="escalated", customer="cust-2", ntu="ntu-9")
    await service.act(ENGINEER, mine, lambda _: Assign(assignee="eve", actor="eve"))
    for ref, to in (
        (waiting, CaseStatus.WAITING_CUSTOMER),
        (supplier, CaseStatus.WAITING_SUPPLIER),
    ):
        await service.act(ENGINEER, ref, _always(Transition(to=to, actor="eve")))
    await service.act(
        ENGINEER,
        solved,
        lambda _: Transition(
            to=CaseStatus.SOLVED,
            actor="eve",
            resolution_method="remote",
            root_cause_category=RootCauseCategory.HARDWARE,
        ),
    )
    await service.act(ENGINEER, escalated, lambda _: Escalate(actor="eve", by_customer=False))

    assert await _queue(service, Queue.MINE) == [mine]
    assert await _queue(service, Queue.UNASSIGNED) == [new, waiting, supplier, escalated]
    assert await _queue(service, Queue.WAITING_CUSTOMER) == [waiting]
    assert await _queue(service, Queue.WAITING_SUPPLIER) == [supplier]
    assert await _queue(service, Queue.WAITING_SUPPLIER, statuses=(CaseStatus.NEW,)) == []
    assert await _queue(service, Queue.MONITORING) == [solved]
    assert await _queue(service, Queue.ESCALATED) == [escalated]
    assert await _queue(service, Queue.RFO_PENDING) == []
    assert len(await _queue(service, Queue.ALL)) == 6
    # The P1's first response (30 min) is at risk; the P2s' too (same first response).
    assert new in await _queue(service, Queue.AT_RISK)
    assert solved not in await _queue(service, Queue.AT_RISK)

    now = service.clock.now()
    page = await service.queue_page(
        filters=None,
        order="newest",
        offset=0,
        limit=1,
        counts=QueueCounts(assignee="eve", now=now, at_risk_within=SOON),
    )
    assert page.rows == []
    assert page.counts == {
        "mine": 1,
        "unassigned": 4,
        "at_risk": 5,
        "breached": 0,
        "waiting_customer": 1,
        "waiting_supplier": 1,
        "monitoring": 1,
        "rfo_pending": 0,
        "escalated": 1,
        "all": 6,
    }

    # A page shorter than the queue still counts all of it.
    page = await service.queue_page(filters=CaseFilters(), order="newest", offset=0, limit=2)
    assert (len(page.rows), page.count) == (2, 6)
    page = await service.queue_page(filters=CaseFilters(), order="newest", offset=4, limit=5)
    assert (len(page.rows), page.count) == (2, 6)

    # The monitoring window ends (24 h for a P2): the case leaves the queue.
    clock.advance(timedelta(days=3))
    assert await _queue(service, Queue.MONITORING) == []
    # The counts' statement is built once: another reader, another instant, bound anew.
    later = QueueCounts(assignee="bob", now=service.clock.now(), at_risk_within=SOON)
    page = await service.queue_page(filters=None, order="newest", offset=0, limit=1, counts=later)
    assert (page.counts["mine"], page.counts["monitoring"], page.counts["all"]) == (0, 0, 6)


async def test_a_promise_puts_a_case_at_risk_and_then_breached(
    database: Database, service: CaseService, clock: FakeClock
) -> None:
    await seed(database)
    ref = await open_case(service, summary="answered")
    # First response given (a public staff reply stops that clock).
    await service.act(ENGINEER, ref, lambda _: Assign(assignee="eve", actor="eve"))
    from caseapi.comments.models import Visibility
    from caseapi.comments.service import CommentService

    comments = CommentService(sessionmaker=database.sessionmaker, clock=clock)
    await comments.add_comment(
        principal=ENGINEER, ref=ref, body="on it", visibility=Visibility.PUBLIC
    )
    assert await _queue(service, Queue.AT_RISK) == []
    due = clock.now() + timedelta(hours=2)
    promise = Commitment(kind=CommitmentKind.CALLBACK, due_at=due, note="call back", set_by="eve")
    await service.act(ENGINEER, ref, lambda _: SetCommitment(commitment=promise, actor="eve"))
    assert await _queue(service, Queue.AT_RISK) == []
    clock.advance(timedelta(minutes=100))
    assert await _queue(service, Queue.AT_RISK) == [ref]
    page = await service.queue_page(filters=CaseFilters(), order="due", offset=0, limit=10)
    [row] = page.rows
    assert row.deadline is not None and row.deadline.what == "call back"
    assert row.deadline.at == due
    await advance(clock, ticker(database, clock, service), timedelta(minutes=30))
    assert await _queue(service, Queue.BREACHED) == [ref]
    assert await _queue(service, Queue.AT_RISK) == []
    case = await service.get_case(ref)
    assert next_deadline(case, []) is not None  # the repair clock still runs


async def test_counts_are_read_again_after_any_change_and_at_most_a_ttl_old(
    database: Database, service: CaseService, clock: FakeClock
) -> None:
    await seed(database)
    # First response due in 30 min; "at risk" within 10 min of a deadline.
    ref = await open_case(service, summary="one", priority=CasePriority.P1)
    soon = timedelta(minutes=10)

    async def counts() -> dict[str, int]:
        now = service.clock.now()
        mine = QueueCounts(assignee="eve", now=now, at_risk_within=soon)
        page = await service.queue_page(
            filters=None, order="newest", offset=0, limit=1, counts=mine
        )
        return page.counts

    before = await counts()
    assert (before["unassigned"], before["mine"], before["at_risk"]) == (1, 0, 0)
    # A change is counted on the next look, however soon.
    await service.act(ENGINEER, ref, lambda _: Assign(assignee="eve", actor="eve"))
    after = await counts()
    assert (after["unassigned"], after["mine"]) == (0, 1)

    # Time alone: the deadline (12:30) comes within the horizon at 12:20; the counts
    # show it once the last read is COUNTS_TTL old, not before.
    clock.advance(timedelta(minutes=19, seconds=58))
    assert (await counts())["at_risk"] == 0  # read at 12:19:58
    clock.advance(timedelta(seconds=3))
    assert (await counts())["at_risk"] == 0  # 12:20:01: the 3 s old read
    clock.advance(COUNTS_TTL - timedelta(seconds=3))
    assert (await counts())["at_risk"] == 1


def test_the_counts_cache_keeps_a_bounded_number_of_readers() -> None:
    cache = CountsCache(ttl=timedelta(seconds=5), size=2)
    now = START
    for name in ("ann", "bob", "cid"):
        cache.put(QueueCounts(assignee=name, now=now), "m", {"mine": 1})
    assert cache.get(QueueCounts(assignee="ann", now=now), "m") is None
    assert cache.get(QueueCounts(assignee="cid", now=now), "m") == {"mine": 1}
    assert cache.get(QueueCounts(assignee="cid", now=now), "other marker") is None
