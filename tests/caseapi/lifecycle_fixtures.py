"""Shared helpers for the lifecycle, SLA, timer and case-API tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from caseapi.auth.principal import Principal, Role
from caseapi.cases import repository
from caseapi.cases.config import DEFAULT_SLA
from caseapi.cases.enums import CaseEventKind, CasePriority, CaseStatus, CaseType
from caseapi.cases.models import Case, CaseNotification
from caseapi.cases.service import CaseService
from caseapi.cases.snapshot import CaseSnapshot, SlaPolicy
from caseapi.cases.ticker import CaseTicker
from caseapi.customers.models import Customer
from caseapi.ntus.models import Ntu, NtuState
from nms.clock import FakeClock
from tests.caseapi.conftest import START, Database

ENGINEER = Principal(key_id=None, name="alice", role=Role.ENGINEER)
CUSTOMER = Principal(key_id=None, name="acme-portal", role=Role.CUSTOMER, customer_id="cust-1")

POLICY: SlaPolicy = DEFAULT_SLA.policy()


def snapshot(
    status: CaseStatus = CaseStatus.NEW,
    *,
    priority: CasePriority = CasePriority.P1,
    type: CaseType = CaseType.INCIDENT,
    **changes: Any,
) -> CaseSnapshot:
    """A case created at ``START`` with its initial deadlines, in ``status``."""
    base = CaseSnapshot(
        status=status,
        type=type,
        priority=priority,
        created_at=START,
        first_response_due_at=START + POLICY.first_response,
        unassigned_due_at=START + POLICY.unassigned_after,
        ttr_due_at=START + timedelta(hours=4),
    )
    from dataclasses import replace

    return replace(base, **changes)


async def seed(database: Database, *, ntu_status: str = "up", **customer_attrs: Any) -> None:
    """Customer ``cust-1`` (active) with NTUs ``ntu-1``/``ntu-2``; ``ntu-1`` in ``ntu_status``."""
    async with database.sessionmaker() as session:
        session.add(Customer(id="cust-1", name="Acme", attributes=dict(customer_attrs)))
        session.add(Customer(id="cust-2", name="Other"))
        await session.flush()
        session.add_all(
            [
                Ntu(id="ntu-1", customer_id="cust-1", address="10.0.0.1", service_id="svc-1"),
                Ntu(id="ntu-2", customer_id="cust-1", address="10.0.0.2"),
                Ntu(id="ntu-9", customer_id="cust-2", address="10.0.0.9"),
            ]
        )
        session.add(NtuState(ntu_id="ntu-1", status=ntu_status, since=START))
        await session.commit()


async def set_ntu_status(database: Database, ntu_id: str, status: str) -> None:
    async with database.sessionmaker() as session:
        state = await session.get(NtuState, ntu_id)
        assert state is not None
        state.status = status
        await session.commit()


def ticker(database: Database, clock: FakeClock, service: CaseService | None = None) -> CaseTicker:
    return CaseTicker(
        sessionmaker=database.sessionmaker,
        clock=clock,
        sla=service.sla if service is not None else None,
    )


async def advance(clock: FakeClock, tick: CaseTicker, delta: timedelta) -> int:
    """Move the clock and run the ticker once."""
    clock.advance(delta)
    return await tick.run_once()


async def kinds(service: CaseService, ref: str) -> list[CaseEventKind]:
    return [event.kind for event in await service.get_timeline(ref)]


async def events_of(service: CaseService, ref: str, kind: CaseEventKind) -> list[dict[str, Any]]:
    return [e.data for e in await service.get_timeline(ref) if e.kind is kind]


async def notifications(database: Database) -> Sequence[CaseNotification]:
    async with database.sessionmaker() as session:
        return list((await session.execute(select(CaseNotification))).scalars())


async def open_cases_per_key(database: Database) -> dict[str, int]:
    async with database.sessionmaker() as session:
        cases = (await session.execute(select(Case))).scalars()
        counts: dict[str, int] = {}
        for case in cases:
            if case.dedup_key is not None and not case.status.is_terminal:
                counts[case.dedup_key] = counts.get(case.dedup_key, 0) + 1
        return counts


async def publish_rfo(database: Database, ref: str, at: datetime) -> None:
    """What the RFO module does on publish: the hook, in its own transaction."""
    from caseapi.cases.store import mark_rfo_published

    async with database.sessionmaker() as session:
        case = await repository.get_case_by_ref(session, ref=ref)
        assert case is not None
        await mark_rfo_published(session, case_id=case.id, at=at, actor="engineer:alice")
        await session.commit()
