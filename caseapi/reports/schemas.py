"""API shapes of the reports (JSON); the CSV columns are ``caseapi.reports.render``'s."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

from caseapi.reports.availability import Figures
from caseapi.reports.service import (
    AvailabilityReport,
    CustomerInfo,
    OutageLine,
    Row,
    SlaReport,
)
from caseapi.reports.sla import CaseVerdict, Tally


class ReportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    PDF = "pdf"


class PeriodPublic(BaseModel):
    start: datetime
    end: datetime
    timezone: str
    label: str


class CustomerPublic(BaseModel):
    id: str
    name: str
    timezone: str | None


class FiguresPublic(BaseModel):
    """Seconds are NTU-seconds for groups (each NTU's time added)."""

    ntus: int
    period_seconds: float
    maintenance_seconds: float
    no_data_seconds: float
    measured_seconds: float
    downtime_seconds: float
    degraded_seconds: float
    availability_percent: float | None
    outages: int
    longest_outage_seconds: float
    mttr_seconds: float | None
    mtbf_seconds: float | None
    p1: int
    p2: int


class RowPublic(FiguresPublic):
    scope: str
    id: str
    customer_id: str | None


class OutagePublic(BaseModel):
    ntu_id: str
    customer_id: str | None
    service_id: str | None
    site: str | None
    kind: str
    cause: str
    start: datetime
    end: datetime | None
    seconds_in_period: float
    counted: bool
    case_ref: str | None
    rfo: str | None
    """The case's RFO (``/v1/cases/{ref}/rfo``) once published."""


class MaintenancePublic(BaseModel):
    ref: str
    title: str
    behaviour: str
    start: datetime
    end: datetime


class AvailabilityPublic(BaseModel):
    period: PeriodPublic
    customer: CustomerPublic | None
    generated_at: datetime
    summary: FiguresPublic
    rows: list[RowPublic]
    outages: list[OutagePublic]
    maintenance: list[MaintenancePublic]


class TallyPublic(BaseModel):
    met: int
    missed: int
    pending: int


class MissedCasePublic(BaseModel):
    case_ref: str
    customer_id: str | None
    priority: str
    created_at: datetime
    missed: list[str]
    first_response: str
    time_to_repair: str
    commitments_missed: int


class SlaPublic(BaseModel):
    period: PeriodPublic
    customer: CustomerPublic | None
    generated_at: datetime
    cases: int
    first_response: TallyPublic
    time_to_repair: dict[str, TallyPublic]
    commitments_met: int
    commitments_missed: int
    escalated: int
    missed_cases: list[MissedCasePublic]


def figures_dict(f: Figures) -> dict[str, float | int | None]:
    """The figures as JSON/CSV values."""
    return {
        "ntus": f.ntus,
        "period_seconds": f.period,
        "maintenance_seconds": f.maintenance,
        "no_data_seconds": f.no_data,
        "measured_seconds": f.measured,
        "downtime_seconds": f.downtime,
        "degraded_seconds": f.degraded,
        "availability_percent": f.availability,
        "outages": f.outages,
        "longest_outage_seconds": f.longest_outage,
        "mttr_seconds": f.mttr,
        "mtbf_seconds": f.mtbf,
        "p1": f.p1,
        "p2": f.p2,
    }


def rfo_link(line: OutageLine) -> str | None:
    """Where the customer reads the RFO of the line's case, once it is published."""
    ref = line.outage.case_ref
    return f"/v1/cases/{ref}/rfo" if ref and line.rfo_published else None


def _customer(info: CustomerInfo | None) -> CustomerPublic | None:
    if info is None:
        return None
    return CustomerPublic(id=info.id, name=info.name, timezone=info.timezone)


def _row(row: Row) -> RowPublic:
    return RowPublic(
        scope=row.scope,
        id=row.id,
        customer_id=row.customer_id,
        **figures_dict(row.figures),
    )


def availability_public(report: AvailabilityReport) -> AvailabilityPublic:
    """Shape an availability report for the API."""
    p = report.period
    return AvailabilityPublic(
        period=PeriodPublic(start=p.start, end=p.end, timezone=p.timezone, label=p.label),
        customer=_customer(report.customer),
        generated_at=report.generated_at,
        summary=FiguresPublic(**figures_dict(report.summary)),
        rows=[_row(row) for row in report.rows],
        outages=[
            OutagePublic(
                ntu_id=line.outage.ntu_id,
                customer_id=line.customer_id,
                service_id=line.service_id,
                site=line.site,
                kind=line.outage.kind.value,
                cause=line.outage.cause.value,
                start=line.start,
                end=line.end,
                seconds_in_period=line.seconds_in_period,
                counted=line.outage.counted,
                case_ref=line.outage.case_ref,
                rfo=rfo_link(line),
            )
            for line in report.outages
        ],
        maintenance=[
            MaintenancePublic(
                ref=w.ref, title=w.title, behaviour=w.behaviour, start=w.start, end=w.end
            )
            for w in report.maintenance
        ],
    )


def _tally(t: Tally) -> TallyPublic:
    return TallyPublic(met=t.met, missed=t.missed, pending=t.pending)


def _missed(v: CaseVerdict) -> MissedCasePublic:
    return MissedCasePublic(
        case_ref=v.facts.ref,
        customer_id=v.facts.customer_id,
        priority=v.facts.priority,
        created_at=v.facts.created_at,
        missed=list(v.missed),
        first_response=v.first_response.value,
        time_to_repair=v.time_to_repair.value,
        commitments_missed=v.facts.commitments_missed,
    )


def sla_public(report: SlaReport) -> SlaPublic:
    """Shape an SLA report for the API."""
    p = report.period
    s = report.summary
    return SlaPublic(
        period=PeriodPublic(start=p.start, end=p.end, timezone=p.timezone, label=p.label),
        customer=_customer(report.customer),
        generated_at=report.generated_at,
        cases=s.cases,
        first_response=_tally(s.first_response),
        time_to_repair={priority: _tally(t) for priority, t in sorted(s.time_to_repair.items())},
        commitments_met=s.commitments_met,
        commitments_missed=s.commitments_missed,
        escalated=s.escalated,
        missed_cases=[_missed(v) for v in s.missed_cases],
    )
