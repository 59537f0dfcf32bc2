"""Queries for reports: intervals, NTUs, maintenance and cases of a period."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.cases.models import Case, CaseCommitment
from caseapi.customers.models import Customer
from caseapi.maintenance.models import MaintenanceWindow
from caseapi.maintenance.repository import load_inventory, scope_of
from caseapi.maintenance.scope import resolve
from caseapi.ntus.models import Ntu
from caseapi.reports.availability import Outage, OutageCause, OutageKind, Span
from caseapi.reports.models import OutageInterval
from caseapi.reports.sla import CaseFacts


@dataclass(frozen=True, slots=True)
class NtuRow:
    """An NTU as reports group it."""

    id: str
    customer_id: str | None
    service_id: str | None
    site: str | None


@dataclass(frozen=True, slots=True)
class WindowRow:
    """A maintenance window overlapping the period, with the NTUs it covers."""

    ref: str
    title: str
    behaviour: str
    start: datetime
    end: datetime
    ntu_ids: frozenset[str]


async def get_customer(session: AsyncSession, *, customer_id: str) -> Customer | None:
    """The customer ``customer_id``, if any."""
    return await session.get(Customer, customer_id)


async def list_customers(session: AsyncSession) -> list[Customer]:
    """Every customer, by id."""
    return list((await session.execute(select(Customer).order_by(Customer.id))).scalars())


async def list_ntus(session: AsyncSession, *, customer_id: str | None) -> list[NtuRow]:
    """The NTUs in the inventory (of ``customer_id`` only, if given)."""
    stmt = select(Ntu.id, Ntu.customer_id, Ntu.service_id, Ntu.site).order_by(Ntu.id)
    if customer_id is not None:
        stmt = stmt.where(Ntu.customer_id == customer_id)
    return [NtuRow(r.id, r.customer_id, r.service_id, r.site) for r in await session.execute(stmt)]


async def intervals(
    session: AsyncSession, *, start: datetime, end: datetime, customer_id: str | None
) -> tuple[list[Outage], dict[str, NtuRow]]:
    """The intervals overlapping ``[start, end)``, and what they say of their NTUs."""
    stmt = select(
        OutageInterval.ntu_id,
        OutageInterval.customer_id,
        OutageInterval.service_id,
        OutageInterval.site,
        OutageInterval.kind,
        OutageInterval.cause,
        OutageInterval.start_at,
        OutageInterval.end_at,
        OutageInterval.counted,
        OutageInterval.case_ref,
    ).where(
        OutageInterval.start_at < end,
        or_(OutageInterval.end_at.is_(None), OutageInterval.end_at > start),
    )
    if customer_id is not None:
        stmt = stmt.where(OutageInterval.customer_id == customer_id)
    outages: list[Outage] = []
    seen: dict[str, NtuRow] = {}
    for r in await session.execute(stmt.order_by(OutageInterval.start_at, OutageInterval.id)):
        outages.append(
            Outage(
                ntu_id=r.ntu_id,
                kind=OutageKind(r.kind),
                cause=OutageCause(r.cause),
                start=r.start_at,
                end=r.end_at,
                counted=r.counted,
                case_ref=r.case_ref,
            )
        )
        seen.setdefault(r.ntu_id, NtuRow(r.ntu_id, r.customer_id, r.service_id, r.site))
    return outages, seen


async def maintenance(session: AsyncSession, *, start: datetime, end: datetime) -> list[WindowRow]:
    """The windows (not cancelled) overlapping ``[start, end)``, resolved to NTUs."""
    windows = list(
        (
            await session.execute(
                select(MaintenanceWindow)
                .where(
                    MaintenanceWindow.cancelled_at.is_(None),
                    MaintenanceWindow.starts_at < end,
                    MaintenanceWindow.ends_at > start,
                )
                .order_by(MaintenanceWindow.starts_at, MaintenanceWindow.id)
            )
        ).scalars()
    )
    if not windows:
        return []
    index = await load_inventory(session, windows=windows)
    return [
        WindowRow(
            ref=w.ref,
            title=w.title,
            behaviour=w.behaviour,
            start=w.starts_at,
            end=w.ends_at,
            ntu_ids=frozenset(resolve(scope_of(w), index)),
        )
        for w in windows
    ]


def maintenance_by_ntu(windows: Sequence[WindowRow]) -> dict[str, list[Span]]:
    """NTU id -> the spans of the windows covering it."""
    spans: dict[str, list[Span]] = defaultdict(list)
    for window in windows:
        for ntu_id in window.ntu_ids:
            spans[ntu_id].append((window.start, window.end))
    return spans


async def rfo_published(session: AsyncSession, *, refs: Sequence[str]) -> set[str]:
    """The references among ``refs`` whose RFO has been published."""
    if not refs:
        return set()
    stmt = select(Case.ref).where(
        Case.ref.in_(sorted(set(refs))), Case.rfo_published_at.is_not(None)
    )
    return set((await session.execute(stmt)).scalars())


async def case_facts(
    session: AsyncSession, *, start: datetime, end: datetime, customer_id: str | None
) -> list[CaseFacts]:
    """The cases created in ``[start, end)`` (of ``customer_id``), with their commitments."""
    met = func.sum(case((CaseCommitment.met_at.is_not(None), 1), else_=0))
    missed = func.sum(case((CaseCommitment.missed_at.is_not(None), 1), else_=0))
    commitments = (
        select(CaseCommitment.case_id, met.label("met"), missed.label("missed"))
        .group_by(CaseCommitment.case_id)
        .subquery()
    )
    stmt = (
        select(Case, commitments.c.met, commitments.c.missed)
        .outerjoin(commitments, commitments.c.case_id == Case.id)
        .where(Case.created_at >= start, Case.created_at < end)
        .order_by(Case.created_at, Case.id)
    )
    if customer_id is not None:
        stmt = stmt.where(Case.customer_id == customer_id)
    out = []
    for row, n_met, n_missed in await session.execute(stmt):
        out.append(
            CaseFacts(
                ref=row.ref,
                customer_id=row.customer_id,
                priority=row.priority.value,
                type=row.type.value,
                created_at=row.created_at,
                first_response_due_at=row.first_response_due_at,
                first_responded_at=row.first_responded_at,
                first_response_breached_at=row.first_response_breached_at,
                ttr_due_at=row.ttr_due_at,
                ttr_breached_at=row.ttr_breached_at,
                restored_at=row.restored_at,
                solved_at=row.solved_at,
                paused=row.paused_at is not None,
                escalation_level=row.escalation_level.value,
                commitments_met=int(n_met or 0),
                commitments_missed=int(n_missed or 0),
            )
        )
    return out
