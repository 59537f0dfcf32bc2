"""HTTP routes of the reports: availability and SLA as JSON, CSV or the monthly PDF."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response

from caseapi.api.openapi import errors
from caseapi.auth.deps import CaseParticipant
from caseapi.auth.principal import Principal
from caseapi.reports.errors import CustomerNotFoundError, ReportParameterError
from caseapi.reports.period import Period
from caseapi.reports.render import availability_csv, sla_csv
from caseapi.reports.schemas import (
    AvailabilityPublic,
    ReportFormat,
    SlaPublic,
    availability_public,
    sla_public,
)
from caseapi.reports.service import CustomerInfo, ReportQuery, ReportService

router = APIRouter(prefix="/v1/reports", tags=["reports"])

CSV = "text/csv; charset=utf-8"
PDF = "application/pdf"
#: The CSV and PDF forms of a report, and an unknown customer (404).
_ALTERNATIVES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}, PDF: {}}},
    **errors(CustomerNotFoundError),
}


async def get_report_service(request: Request) -> ReportService:
    """Return the report service built by ``create_app``."""
    service: ReportService = request.app.state.report_service
    return service


ReportServiceDep = Annotated[ReportService, Depends(get_report_service)]
CustomerParam = Annotated[
    str | None, Query(description="customer id (staff; a customer key: its own)")
]
MonthParam = Annotated[str | None, Query(description="calendar month YYYY-MM")]
StartParam = Annotated[datetime | None, Query(description="range start, with a UTC offset")]
EndParam = Annotated[datetime | None, Query(description="range end (exclusive)")]
FormatParam = Annotated[ReportFormat | None, Query(description="json, csv or pdf")]


def _format(request: Request, given: ReportFormat | None) -> ReportFormat:
    if given is not None:
        return given
    accept = request.headers.get("accept", "")
    if "text/csv" in accept:
        return ReportFormat.CSV
    if PDF in accept:
        return ReportFormat.PDF
    return ReportFormat.JSON


def _filename(kind: str, label: str, customer: str | None, ext: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in label)
    return f"{kind}-{customer or 'fleet'}-{safe}.{ext}"


async def _export(
    service: ReportService,
    *,
    report: str,
    fmt: ReportFormat,
    customer: str | None,
    period: Period,
    content: bytes | str,
) -> Response:
    """A report file (CSV or PDF) as a download.

    Every export leaves through here: the one place that records them in the audit
    log (``report.export``, the caller named by the auth dependency).
    """
    await service.record_export(
        report=report, fmt=fmt.value, customer=customer, period=period.label, size=len(content)
    )
    media_type = CSV if fmt is ReportFormat.CSV else PDF
    name = _filename(report, period.label, customer, fmt.value)
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def _pdf(service: ReportService, principal: Principal, query: ReportQuery) -> Response:
    # Imported on first use: fpdf2 (with Pillow and fontTools) loaded into every API
    # process at start-up measurably slowed the embedded detector's cycles under load.
    from caseapi.reports.document import monthly_pdf

    availability = await service.availability(principal=principal, query=query)
    if availability.customer is None:
        raise ReportParameterError("customer", "the PDF service report is per customer")
    sla = await service.sla(principal=principal, query=query)
    return await _export(
        service,
        report="service-report",
        fmt=ReportFormat.PDF,
        customer=availability.customer.id,
        period=availability.period,
        content=monthly_pdf(availability, sla),
    )


class _Report(Protocol):
    """What every report carries: the period it covers and its customer, if any."""

    @property
    def period(self) -> Period: ...

    @property
    def customer(self) -> CustomerInfo | None: ...


ReportT = TypeVar("ReportT", bound=_Report)
ReportT_co = TypeVar("ReportT_co", bound=_Report, covariant=True)
PublicT = TypeVar("PublicT")


class _Compute(Protocol[ReportT_co]):
    """A ``ReportService`` method computing one report."""

    def __call__(
        self, *, principal: Principal | None, query: ReportQuery
    ) -> Awaitable[ReportT_co]: ...


async def _respond(
    request: Request,
    principal: Principal,
    service: ReportService,
    *,
    query: ReportQuery,
    given: ReportFormat | None,
    report: str,
    compute: _Compute[ReportT],
    to_csv: Callable[[ReportT], str],
    to_public: Callable[[ReportT], PublicT],
) -> PublicT | Response:
    """Answer a report in the negotiated format: the monthly PDF, a CSV export or JSON.

    Args:
        report: The report's name in export file names and the audit log.
        compute: The service method computing it.
        to_csv: Its CSV rendering.
        to_public: Its JSON body.
    """
    chosen = _format(request, given)
    if chosen is ReportFormat.PDF:
        return await _pdf(service, principal, query)
    computed = await compute(principal=principal, query=query)
    if chosen is ReportFormat.CSV:
        return await _export(
            service,
            report=report,
            fmt=chosen,
            customer=computed.customer.id if computed.customer else None,
            period=computed.period,
            content=to_csv(computed),
        )
    return to_public(computed)


@router.get("/availability", response_model=AvailabilityPublic, responses=_ALTERNATIVES)
async def get_availability(
    request: Request,
    principal: CaseParticipant,
    service: ReportServiceDep,
    customer: CustomerParam = None,
    month: MonthParam = None,
    start: StartParam = None,
    end: EndParam = None,
    format: FormatParam = None,
) -> AvailabilityPublic | Response:
    """Availability per NTU, service, site and customer over a month or range."""
    return await _respond(
        request,
        principal,
        service,
        query=ReportQuery(customer=customer, month=month, start=start, end=end),
        given=format,
        report="availability",
        compute=service.availability,
        to_csv=availability_csv,
        to_public=availability_public,
    )


@router.get("/sla", response_model=SlaPublic, responses=_ALTERNATIVES)
async def get_sla(
    request: Request,
    principal: CaseParticipant,
    service: ReportServiceDep,
    customer: CustomerParam = None,
    month: MonthParam = None,
    start: StartParam = None,
    end: EndParam = None,
    format: FormatParam = None,
) -> SlaPublic | Response:
    """SLA compliance (first response, time to repair, commitments) over a month or range."""
    return await _respond(
        request,
        principal,
        service,
        query=ReportQuery(customer=customer, month=month, start=start, end=end),
        given=format,
        report="sla",
        compute=service.sla,
        to_csv=sla_csv,
        to_public=sla_public,
    )
