"""Availability and SLA reports for a customer (or the fleet) over a period.

Reads only: the outage history (``outage_intervals``), the inventory, maintenance
windows and cases. The arithmetic is ``caseapi.reports.availability`` and
``caseapi.reports.sla``; this module picks the rows, the period and who may see
what (a customer only its own; staff any customer or the whole fleet).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.audit.enums import AuditAction
from caseapi.audit.service import record_action
from caseapi.auth.principal import Principal
from caseapi.auth.tenancy import own_customer
from caseapi.clock import Clock
from caseapi.core.database import session_scope
from caseapi.reports import repository
from caseapi.reports.availability import Figures, Outage, combine, ntu_figures
from caseapi.reports.errors import CustomerNotFoundError, ReportParameterError
from caseapi.reports.period import (
    Period,
    PeriodError,
    current_month,
    month_period,
    parse_month,
    range_period,
)
from caseapi.reports.repository import NtuRow, WindowRow
from caseapi.reports.sla import SlaSummary, summarise

TIMEZONE_ATTRIBUTE = "timezone"


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """What a report is asked for: a customer (``None``: the fleet) and a period
    (``month``, or ``start`` and ``end``; the current month when none is given)."""

    customer: str | None = None
    month: str | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class CustomerInfo:
    id: str
    name: str
    timezone: str | None


@dataclass(frozen=True, slots=True)
class Row:
    """The figures of one NTU, service, site or customer."""

    scope: str
    id: str
    customer_id: str | None
    figures: Figures


@dataclass(frozen=True, slots=True)
class OutageLine:
    """One interval in the period, as the report lists it."""

    outage: Outage
    customer_id: str | None
    service_id: str | None
    site: str | None
    start: datetime
    end: datetime | None
    seconds_in_period: float
    rfo_published: bool


@dataclass(frozen=True, slots=True)
class AvailabilityReport:
    period: Period
    customer: CustomerInfo | None
    generated_at: datetime
    summary: Figures
    rows: list[Row]
    outages: list[OutageLine]
    maintenance: list[WindowRow]


@dataclass(frozen=True, slots=True)
class SlaReport:
    period: Period
    customer: CustomerInfo | None
    generated_at: datetime
    summary: SlaSummary


class ReportService:
    """Builds availability and SLA reports; read-only."""

    def __init__(self, *, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock

    async def record_export(
        self, *, report: str, fmt: str, customer: str | None, period: str, size: int
    ) -> None:
        """Record in the audit log that the caller took ``report`` away as a file."""
        await record_action(
            self._sessionmaker,
            AuditAction.REPORT_EXPORT,
            at=self._clock.now(),
            target_id=report,
            customer_id=customer,
            details={"format": fmt, "period": period, "bytes": size},
        )

    async def availability(
        self, *, principal: Principal | None, query: ReportQuery
    ) -> AvailabilityReport:
        """The availability report ``query`` asks for, as ``principal`` may see it.

        ``principal`` ``None`` is the operator on the command line (everything).

        Raises:
            CustomerMismatchError: A customer key naming another customer.
            CustomerNotFoundError: No such customer.
            ReportParameterError: A bad month or range.
        """
        now = self._clock.now()
        async with session_scope(self._sessionmaker) as session:
            customer = await self._customer(session, principal, query.customer)
            period = _period(query, customer.timezone if customer else None, now)
            cid = customer.id if customer else None
            inventory = await repository.list_ntus(session, customer_id=cid)
            outages, seen = await repository.intervals(
                session, start=period.start, end=period.end, customer_id=cid
            )
            windows = await repository.maintenance(session, start=period.start, end=period.end)
            refs = [o.case_ref for o in outages if o.case_ref]
            published = await repository.rfo_published(session, refs=refs)
        ntus: dict[str, NtuRow] = {row.id: row for row in inventory}
        for ntu_id, row in seen.items():
            ntus.setdefault(ntu_id, row)  # left the inventory, still has history here
        by_ntu: dict[str, list[Outage]] = defaultdict(list)
        for outage in outages:
            by_ntu[outage.ntu_id].append(outage)
        maint = repository.maintenance_by_ntu(windows)
        figures = {
            ntu_id: ntu_figures(
                by_ntu.get(ntu_id, ()),
                start=period.start,
                end=period.end,
                now=now,
                maintenance=maint.get(ntu_id, ()),
            )
            for ntu_id in sorted(ntus)
        }
        rows = [
            *_grouped("customer", ntus, figures, lambda n: n.customer_id),
            *_grouped("service", ntus, figures, lambda n: n.service_id),
            *_grouped("site", ntus, figures, lambda n: n.site),
            *(Row("ntu", ntu_id, ntus[ntu_id].customer_id, f) for ntu_id, f in figures.items()),
        ]
        stop = min(period.end, now)
        lines = [
            OutageLine(
                outage=o,
                customer_id=ntus[o.ntu_id].customer_id,
                service_id=ntus[o.ntu_id].service_id,
                site=ntus[o.ntu_id].site,
                start=o.start,
                end=o.end,
                seconds_in_period=max(
                    0.0,
                    (min(o.end or now, stop) - max(o.start, period.start)).total_seconds(),
                ),
                rfo_published=o.case_ref in published,
            )
            for o in outages
        ]
        if cid is not None:
            windows = [w for w in windows if w.ntu_ids & ntus.keys()]
        return AvailabilityReport(
            period=period,
            customer=customer,
            generated_at=now,
            summary=combine(figures.values()),
            rows=rows,
            outages=lines,
            maintenance=windows,
        )

    async def sla(self, *, principal: Principal | None, query: ReportQuery) -> SlaReport:
        """The SLA compliance report ``query`` asks for, as ``principal`` may see it.

        Raises:
            CustomerMismatchError: A customer key naming another customer.
            CustomerNotFoundError: No such customer.
            ReportParameterError: A bad month or range.
        """
        now = self._clock.now()
        async with session_scope(self._sessionmaker) as session:
            customer = await self._customer(session, principal, query.customer)
            period = _period(query, customer.timezone if customer else None, now)
            facts = await repository.case_facts(
                session,
                start=period.start,
                end=period.end,
                customer_id=customer.id if customer else None,
            )
        return SlaReport(
            period=period, customer=customer, generated_at=now, summary=summarise(facts, now)
        )

    @staticmethod
    async def _customer(
        session: AsyncSession, principal: Principal | None, named: str | None
    ) -> CustomerInfo | None:
        wanted = own_customer(principal, named, field="customer") if principal else named
        if wanted is None:
            return None
        row = await repository.get_customer(session, customer_id=wanted)
        if row is None:
            raise CustomerNotFoundError(wanted)
        tz = row.attributes.get(TIMEZONE_ATTRIBUTE) if row.attributes else None
        return CustomerInfo(id=row.id, name=row.name, timezone=tz if isinstance(tz, str) else None)


def _period(query: ReportQuery, tz: str | None, now: datetime) -> Period:
    try:
        if query.month is not None:
            if query.start is not None or query.end is not None:
                raise PeriodError("month", "give month or start and end, not both")
            return month_period(*parse_month(query.month), tz)
        if query.start is None and query.end is None:
            return current_month(now, tz)
        if query.start is None or query.end is None:
            missing = "start" if query.start is None else "end"
            raise PeriodError(missing, "a range needs both start and end")
        return range_period(query.start, query.end, tz)
    except PeriodError as exc:
        raise ReportParameterError(exc.field, str(exc)) from None


def _grouped(
    scope: str,
    ntus: dict[str, NtuRow],
    figures: dict[str, Figures],
    key: Callable[[NtuRow], str | None],
) -> Iterable[Row]:
    groups: dict[tuple[str | None, str], list[Figures]] = defaultdict(list)
    for ntu_id, f in figures.items():
        ntu = ntus[ntu_id]
        value = key(ntu)
        if value is None:
            continue
        owner = ntu.customer_id if scope != "customer" else value
        groups[(owner, value)].append(f)
    for (owner, value), parts in sorted(groups.items(), key=lambda kv: (kv[0][0] or "", kv[0][1])):
        yield Row(scope, value, owner, combine(parts))
