"""Hypothesis through the real service and database: detector, ticker, engineers, time.

Random sequences of detector calls (open / restore on one NTU's down and degraded
keys, the P1 open superseding the P2 key), ticker runs, engineer transitions,
customer reopens, RFO publications and clock jumps. After every step:

- at most one non-terminal case per dedup key;
- no negative duration: outage start <= restored <= solved <= window end, and
  created <= first response, created <= closed;
- a detector open never lands on a case that is not working on the outage (unless
  the outage began before that case's restoration: a late duplicate);
- a closed case that owes an RFO has it published, and closed no earlier than the
  end of its monitoring window.

SQLite only (the partial unique index and the lifecycle are the same on both
backends; PostgreSQL-specific paths have their own tests). One migrated database
per test; each example starts from emptied tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.audit.repository import add_permit
from caseapi.auth.principal import Principal
from caseapi.cases import repository
from caseapi.cases.enums import WORKING_STATUSES, CaseStatus, CaseType, RootCauseCategory
from caseapi.cases.errors import CaseRuleError
from caseapi.cases.models import Case
from caseapi.cases.service import CaseService
from caseapi.cases.snapshot import Event, Reopen, Transition
from caseapi.cases.store import mark_rfo_published
from caseapi.cases.ticker import CaseTicker
from caseapi.core.database import make_engine, make_sessionmaker
from caseapi.incidents import IncidentOpen, IncidentService, ntu_degraded_key, ntu_down_key
from caseapi.models import Base
from nms.clock import FakeClock
from tests.caseapi.conftest import START
from tests.caseapi.lifecycle_fixtures import CUSTOMER, ENGINEER

DOWN: Final = ntu_down_key("ntu-1")
DEGRADED: Final = ntu_degraded_key("ntu-1")
KEYS: Final = (DOWN, DEGRADED)

#: Jumps that land just before and after the rules' thresholds, plus anything.
_JUMPS = st.one_of(
    st.sampled_from([1, 10, 29, 31, 61, 4 * 60 + 1, 23 * 60, 24 * 60 + 1, 72 * 60 + 1]),
    st.sampled_from([2 * 24 * 60 + 1, 4 * 24 * 60 + 1]),
    st.integers(min_value=1, max_value=5 * 24 * 60),
)
_TARGETS = st.sampled_from(
    [
        CaseStatus.IN_PROGRESS,
        CaseStatus.WAITING_CUSTOMER,
        CaseStatus.WAITING_SUPPLIER,
        CaseStatus.SOLVED,
        CaseStatus.CLOSED,
        CaseStatus.CANCELLED,
    ]
)
_KEY = st.sampled_from(KEYS)
_BACK = st.integers(min_value=0, max_value=30)  # minutes before "now"
# Detector calls and time passing dominate, as in real life; without the weights a
# history rarely gets a case opened, restored and past its window to the ticker.
_STEP = st.one_of(
    st.tuples(st.just("open"), _KEY, _BACK),
    st.tuples(st.just("open"), st.just(DOWN), _BACK),
    st.tuples(st.just("restore"), _KEY, _BACK),
    st.tuples(st.just("restore"), st.just(DOWN), _BACK),
    st.tuples(st.just("jump"), _JUMPS, st.booleans()),
    st.tuples(st.just("jump"), _JUMPS, st.just(True)),
    st.tuples(st.just("tick")),
    st.tuples(st.just("transition"), _KEY, _TARGETS),
    st.tuples(st.just("reopen"), _KEY),
    st.tuples(st.just("rfo"), _KEY),
)
Step = tuple[Any, ...]


def test_random_histories_keep_one_open_case_per_key_and_sane_durations(
    tmp_path: Path, sqlite_template: Path
) -> None:
    path = tmp_path / "cases.db"
    shutil.copyfile(sqlite_template, path)
    with asyncio.Runner() as runner:
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        sessionmaker = make_sessionmaker(engine)

        # Hypothesis calls this once per example; the database is reset inside.
        @settings(
            max_examples=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(st.lists(_STEP, min_size=1, max_size=25))
        def run(steps: list[Step]) -> None:
            runner.run(_history(sessionmaker, steps))

        try:
            run()
        finally:
            runner.run(engine.dispose())


async def _history(sessionmaker: async_sessionmaker[AsyncSession], steps: list[Step]) -> None:
    await _empty(sessionmaker)
    clock = FakeClock(start=START)
    service = CaseService(sessionmaker=sessionmaker, clock=clock)
    incidents = IncidentService(sessionmaker=sessionmaker, clock=clock)
    ticker = CaseTicker(sessionmaker=sessionmaker, clock=clock)
    for number, step in enumerate(steps):
        await _apply(
            step,
            service=service,
            incidents=incidents,
            ticker=ticker,
            clock=clock,
            sessionmaker=sessionmaker,
        )
        await _check(sessionmaker, after=f"step {number} {step}")


async def _apply(
    step: Step,
    *,
    service: CaseService,
    incidents: IncidentService,
    ticker: CaseTicker,
    clock: FakeClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    now = clock.now()
    match step:
        case ("open", key, back):
            p1 = key == DOWN
            ref = await incidents.open_incident(
                IncidentOpen(
                    dedup_key=key,
                    priority="P1" if p1 else "P2",
                    ntu_id="ntu-1",
                    customer_id="cust-1",
                    service_id="svc-1",
                    site="site",
                    outage_start=now - timedelta(minutes=back),
                    detected_at=now,
                    summary="ntu-1",
                    supersedes=DEGRADED if p1 else None,
                )
            )
            # No outage is swallowed: the case works on it, unless the outage began
            # before that case's restoration (a late duplicate of the old one).
            case = await service.get_case(ref)
            start = now - timedelta(minutes=back)
            assert case.status in WORKING_STATUSES or (
                case.restored_at is not None and start < case.restored_at
            ), f"outage at {start} left {case.ref} {case.status}"
        case ("restore", key, back):
            await incidents.restore_incident(
                dedup_key=key, restored_at=now - timedelta(minutes=back)
            )
        case ("tick",):
            await ticker.run_once()
        case ("jump", minutes, tick):
            clock.advance(timedelta(minutes=minutes))
            if tick:
                await ticker.run_once()
        case ("transition", key, target):
            transition = Transition(
                to=target,
                actor=ENGINEER.actor,
                resolution_method="remote",
                root_cause_category=RootCauseCategory.HARDWARE,
            )
            await _act(service, sessionmaker, ENGINEER, key, transition)
        case ("reopen", key):
            await _act(service, sessionmaker, CUSTOMER, key, Reopen(actor=CUSTOMER.actor))
        case ("rfo", key):
            async with sessionmaker() as session:
                last = await repository.get_last_case_by_dedup_key(session, dedup_key=key)
                if last is not None:
                    await mark_rfo_published(session, case_id=last.id, at=now, actor="e")
                    await session.commit()
        case _:
            raise AssertionError(f"unknown step {step}")


async def _act(
    service: CaseService,
    sessionmaker: async_sessionmaker[AsyncSession],
    principal: Principal,
    key: str,
    event: Event,
) -> None:
    """``event`` on the newest case of ``key`` (if any); the lifecycle may refuse it."""
    async with sessionmaker() as session:
        case = await repository.get_last_case_by_dedup_key(session, dedup_key=key)
    if case is None:
        return
    # A refusal must change nothing, which the check after the step covers.
    with contextlib.suppress(CaseRuleError):
        await service.act(principal, case.ref, lambda _: event)


async def _check(sessionmaker: async_sessionmaker[AsyncSession], *, after: str) -> None:
    async with sessionmaker() as session:
        cases = list((await session.execute(select(Case).order_by(Case.id))).scalars())
    open_keys = [c.dedup_key for c in cases if c.dedup_key and not c.status.is_terminal]
    assert len(open_keys) == len(set(open_keys)), f"two open cases for one key after {after}"
    for case in cases:
        chain = [case.outage_start, case.restored_at, case.solved_at, case.monitoring_until]
        present = [t for t in chain if t is not None]
        assert present == sorted(present), f"{case.ref}: negative duration {chain} after {after}"
        for later in (case.first_responded_at, case.closed_at):
            assert later is None or later >= case.created_at, f"{case.ref} before it opened"
        if case.status is CaseStatus.CLOSED:
            assert case.closed_at is not None
            if case.type is CaseType.INCIDENT:  # every case here is one: each owes an RFO
                assert case.rfo_published_at is not None, f"{case.ref} closed without its RFO"
            if case.monitoring_until is not None:
                assert case.closed_at >= case.monitoring_until, f"{case.ref} closed in window"


async def _empty(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session:
        # The audit log lets rows go only under a purge permit (caseapi.audit.models).
        await add_permit(session, cutoff=datetime(9999, 1, 1, tzinfo=UTC))
        await session.execute(text("DELETE FROM audit_events"))
        for table in reversed(Base.metadata.sorted_tables):
            await session.execute(text(f"DELETE FROM {table.name}"))
        await session.commit()
