"""A batch of restorations (``restore_incidents``) writes what one call per request writes.

When a mass outage ends, its cases are solved in bulk (``restorations.solve_many``);
these tests hold that shortcut to the rules of ``restore_incident``, as
``test_incidents_batch`` does for the opens: two twin fleets get the same history and
the same requests, one call each for the first, one batch for the second, and every
row written (cases, timeline, notifications, staff alerts, outage history) must be the
same once ids and references are named alike. Both backends, with and without an
organisation, on a fake clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.cases import repository, store
from caseapi.cases.config import DEFAULT_SLA
from caseapi.cases.enums import CaseStatus, CommitmentKind, RootCauseCategory
from caseapi.cases.models import Case, CaseEvent
from caseapi.cases.snapshot import Assign, Commitment, Event, SetCommitment, Transition
from caseapi.incidents import (
    Affected,
    IncidentRestore,
    IncidentService,
    UpstreamOpen,
    node_down_key,
    ntu_degraded_key,
    ntu_down_key,
)
from caseapi.notifications.models import Notification
from caseapi.reports.models import OutageInterval
from nms.clock import FakeClock
from tests.caseapi.conftest import START, Database, incident
from tests.caseapi.test_incidents_batch import TWINS, _dump, _fleet
from tests.caseapi.test_staff_alerts import _organisation
from tests.caseapi.test_teams import organise

#: When the power came back: the batch's restorations (NTU 6's is before its outage).
BACK = START + timedelta(minutes=3)


async def _by_hand(database: Database, clock: FakeClock, key: str, *events: Event) -> None:
    """An engineer's work on the open case of ``key``, through the lifecycle."""
    async with database.sessionmaker() as session:
        case = await repository.get_open_case_by_dedup_key(session, dedup_key=key)
        assert case is not None
        for item in events:
            await store.apply_event(
                session, case, item, now=clock.now(), policy=DEFAULT_SLA.policy()
            )
        await session.commit()


def _node(twin: str) -> UpstreamOpen:
    return UpstreamOpen(
        node_id=f"{twin}-node",
        dedup_key=node_down_key(f"{twin}-node"),
        site=None,
        outage_start=START - timedelta(minutes=10),
        detected_at=START,
        summary="node down",
        affected=(Affected(ntu_id=f"{twin}-5", customer_id="cust-1"),),
    )


async def _history(
    incidents: IncidentService, database: Database, clock: FakeClock, twin: str
) -> None:
    """During the outage: P1s on NTUs 1-4 and 6, a P2 on 7, an upstream incident over
    5; an engineer holds 2 (assigned, in progress, an update promised), solved 3 by
    hand, closed 4."""
    for n in (1, 2, 3, 4, 6):
        await incidents.open_incident(
            incident(f"{twin}-{n}", customer_id="cust-2" if n == 2 else "cust-1")
        )
    p2 = incident(f"{twin}-7", priority="P2", dedup_key=ntu_degraded_key(f"{twin}-7"))
    await incidents.open_incident(p2)
    await incidents.open_upstream_incident(_node(twin))
    engineer = "eng-1"
    promise = Commitment(
        kind=CommitmentKind.NEXT_UPDATE, due_at=clock.now() + timedelta(hours=1), set_by=engineer
    )
    await _by_hand(
        database,
        clock,
        ntu_down_key(f"{twin}-2"),
        Assign(assignee=engineer, actor=engineer),
        SetCommitment(commitment=promise, actor=engineer),
    )
    solved = Transition(
        to=CaseStatus.SOLVED,
        actor=engineer,
        resolution_method="remote",
        root_cause_category=RootCauseCategory.POWER,
        resolution="power restored by the utility",
    )
    await _by_hand(database, clock, ntu_down_key(f"{twin}-3"), solved)
    async with database.sessionmaker() as session:
        case = await repository.get_open_case_by_dedup_key(
            session, dedup_key=ntu_down_key(f"{twin}-4")
        )
        assert case is not None
        await repository.set_case_status(session, case=case, status=CaseStatus.CLOSED, at=START)
        await session.commit()


def _requests(twin: str) -> list[IncidentRestore]:
    def back(key: str, at: Any = BACK) -> IncidentRestore:
        return IncidentRestore(dedup_key=key, restored_at=at)

    return [
        back(ntu_down_key(f"{twin}-1")),  # solved: P1 window
        back(ntu_down_key(f"{twin}-2")),  # held by an engineer: solved all the same
        back(ntu_down_key(f"{twin}-3")),  # solved by hand: its history ends here
        back(ntu_down_key(f"{twin}-4")),  # closed: None
        back(ntu_down_key(f"{twin}-1"), BACK + timedelta(seconds=5)),  # twice: same answer
        back(ntu_down_key(f"{twin}-6"), START - timedelta(hours=1)),  # before the outage
        back(ntu_degraded_key(f"{twin}-7")),  # a P2: its window
        back(node_down_key(f"{twin}-node")),  # upstream: its customer case too
        back(ntu_down_key(f"{twin}-9")),  # unknown: None
    ]


@pytest.mark.parametrize("organisation", ["none", "routing", "on-call"])
async def test_a_batch_restores_what_one_call_per_request_restores(
    database: Database, incidents: IncidentService, clock: FakeClock, organisation: str
) -> None:
    await _fleet(database)
    if organisation == "routing":
        await organise(database)
    elif organisation == "on-call":
        await _organisation(database)
    for twin in TWINS:
        await _history(incidents, database, clock, twin)
    before = await _dump(database, "twb")
    clock.advance(timedelta(minutes=5))
    one_by_one = [
        await incidents.restore_incident(dedup_key=r.dedup_key, restored_at=r.restored_at)
        for r in _requests("twa")
    ]
    batch = await incidents.restore_incidents(_requests("twb"))
    assert [ref is None for ref in batch] == [ref is None for ref in one_by_one]
    assert [i for i, ref in enumerate(batch) if ref is None] == [3, 8]
    assert batch[4] == batch[0]
    a, b = await _dump(database, "twa"), await _dump(database, "twb")
    assert a == b
    assert len(set(b) - set(before)) >= 15  # entries, notifications, intervals ended
    async with database.sessionmaker() as session:
        cases = (await session.scalars(select(Case).where(Case.ntu_id.startswith("twb-")))).all()
        windows = {
            c.dedup_key: c.monitoring_until - c.solved_at
            for c in cases
            if c.solved_at is not None and c.monitoring_until is not None
        }
    assert windows[ntu_down_key("twb-1")] == timedelta(hours=24)
    assert windows[ntu_down_key("twb-2")] == timedelta(hours=24)
    assert windows[ntu_degraded_key("twb-7")] == timedelta(hours=72)
    assert windows[f"{node_down_key('twb-node')}:customer:cust-1"] == timedelta(hours=24)
    # Retried (the detector's answer was lost): the same answers, nothing more written.
    clock.advance(timedelta(minutes=1))
    assert await incidents.restore_incidents(_requests("twb")) == batch
    assert await _dump(database, "twb") == b


async def test_a_thousand_restorations_take_a_few_statements_per_table(
    database: Database, incidents: IncidentService, clock: FakeClock
) -> None:
    await _fleet(database)
    refs = await incidents.open_incidents([incident(f"mass-{n}") for n in range(1000)])
    clock.advance(timedelta(minutes=5))
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    requests = [
        IncidentRestore(dedup_key=ntu_down_key(f"mass-{n}"), restored_at=BACK) for n in range(1000)
    ]
    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        assert await incidents.restore_incidents(requests) == refs
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)
    # Measured 16-17 (reads of cases, customers, NTUs, commitments and open intervals
    # per 500 cases; one UPDATE of the cases; one INSERT per table): not per case.
    assert len(statements) <= 24, statements
    async with database.sessionmaker() as session:
        solved = select(func.count()).select_from(Case).where(Case.status == CaseStatus.SOLVED)
        assert (await session.execute(solved)).scalar_one() == 1000
        open_ = select(func.count()).where(OutageInterval.end_at.is_(None))
        assert (await session.execute(open_)).scalar_one() == 0


async def _counts(database: Database) -> tuple[int, ...]:
    async with database.sessionmaker() as session:
        queries: list[Any] = [
            select(func.count()).select_from(Case).where(Case.status == CaseStatus.SOLVED),
            select(func.count()).select_from(CaseEvent),
            select(func.count()).select_from(Notification),
            select(func.count()).where(OutageInterval.end_at.is_not(None)),
        ]
        return tuple([int((await session.execute(q)).scalar_one()) for q in queries])


async def test_a_failed_batch_writes_nothing(
    database: Database, incidents: IncidentService, clock: FakeClock
) -> None:
    """Atomic: a batch that fails half-way solves no case and writes no entry, outbox
    row or interval end; a conflict falls back to one transaction per request."""

    class _Broken(IncidentService):
        async def _restore_many(
            self, session: AsyncSession, requests: Sequence[IncidentRestore]
        ) -> list[str | None]:
            await super()._restore_many(session, requests)
            raise OSError("connection lost")

    class _Conflicts(IncidentService):
        async def _restore_many(
            self, session: AsyncSession, requests: Sequence[IncidentRestore]
        ) -> list[str | None]:
            await super()._restore_many(session, requests)
            raise IntegrityError("UPDATE", {}, Exception("conflict"))

    await _fleet(database)
    refs = await incidents.open_incidents([incident("twa-1"), incident("twa-2")])
    before = await _counts(database)
    requests = [
        IncidentRestore(dedup_key=ntu_down_key(f"twa-{n}"), restored_at=BACK) for n in (1, 2)
    ]
    with pytest.raises(OSError, match="connection lost"):
        await _Broken(sessionmaker=database.sessionmaker, clock=clock).restore_incidents(requests)
    assert await _counts(database) == before
    conflicted = _Conflicts(sessionmaker=database.sessionmaker, clock=clock)
    assert await conflicted.restore_incidents(requests) == refs
    solved, entries, notes, ended = await _counts(database)
    assert (solved, ended) == (2, 2)
    assert (entries, notes) == (before[1] + 2, before[2] + 2)  # one restoration each


async def test_a_naive_time_is_refused_before_anything_is_written(
    database: Database, incidents: IncidentService
) -> None:
    await _fleet(database)
    await incidents.open_incident(incident("twa-1"))
    before = await _counts(database)
    naive = IncidentRestore(dedup_key=ntu_down_key("twa-1"), restored_at=BACK.replace(tzinfo=None))
    good = IncidentRestore(dedup_key=ntu_down_key("twa-1"), restored_at=BACK)
    with pytest.raises(ValueError, match="restored_at"):
        await incidents.restore_incidents([good, naive])
    assert await _counts(database) == before
    assert await incidents.restore_incidents([]) == []
