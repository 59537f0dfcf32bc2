"""The monthly service report of one customer as PDF (on ``caseapi.core.pdf``).

Summary table (availability, downtime, outages, MTTR/MTBF, P1/P2, what was
excluded, SLA compliance), an availability chart per service, the figures per
service and site, the outage list with case references and RFO links, the
maintenance windows and the cases that missed a target. Times are shown in the
customer's time zone.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from caseapi.core.localtime import format_short
from caseapi.core.pdf import Bar, PdfDocument
from caseapi.reports.availability import Figures
from caseapi.reports.schemas import rfo_link
from caseapi.reports.service import AvailabilityReport, SlaReport


def duration(seconds: float) -> str:
    """``3725`` -> ``"1 h 02 min 05 s"``; under a minute ``"45 s"``."""
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours:02d} h {minutes:02d} min"
    if hours:
        return f"{hours} h {minutes:02d} min {secs:02d} s"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def percent(value: float | None) -> str:
    """``99.9865`` -> ``"99.987 %"``; ``None`` -> ``"n/a (no data)"``."""
    return "n/a (no data)" if value is None else f"{value:.3f} %"


def _local(at: datetime | None, zone: ZoneInfo) -> str:
    # The offset, not an abbreviation: "CET" / "IST" name several zones, an offset one.
    if at is None:
        return "ongoing"
    return format_short(at, zone=zone, seconds=True)


def _cause(kind: str, cause: str, counted: bool) -> str:
    """``"own"``, ``"upstream"``, ``"degraded (own)"``; ``", not counted"`` when the
    contract does not count it."""
    text = cause if kind == "down" else f"{kind} ({cause})"
    return text if counted else f"{text}, not counted"


def _figure_rows(f: Figures) -> list[tuple[str, str]]:
    return [
        ("Availability", percent(f.availability)),
        ("Counted downtime", duration(f.downtime)),
        ("Outages", str(f.outages)),
        ("Longest outage", duration(f.longest_outage)),
        ("MTTR", duration(f.mttr) if f.mttr is not None else "-"),
        ("MTBF", duration(f.mtbf) if f.mtbf is not None else "-"),
        ("P1 / P2 cases", f"{f.p1} / {f.p2}"),
        ("Degraded service", duration(f.degraded)),
        ("Excluded: maintenance", duration(f.maintenance)),
        ("Excluded: no data", duration(f.no_data)),
        ("NTUs", str(f.ntus)),
    ]


def monthly_pdf(availability: AvailabilityReport, sla: SlaReport) -> bytes:
    """The monthly service report of ``availability.customer`` as PDF bytes."""
    customer = availability.customer
    assert customer is not None, "a service report is per customer"
    period = availability.period
    zone = ZoneInfo(period.timezone)
    doc = PdfDocument(
        title=f"Service report {period.label}: {customer.name}",
        subtitle=(
            f"Customer {customer.id}. Period {_local(period.start, zone)} to "
            f"{_local(period.end, zone)} ({period.timezone})."
        ),
        generated_at=availability.generated_at,
    )
    s = sla.summary
    doc.heading("Summary")
    ttr = ", ".join(
        f"{priority} {t.met} met / {t.missed} missed"
        for priority, t in sorted(s.time_to_repair.items())
    )
    doc.key_values(
        [
            *_figure_rows(availability.summary),
            ("Cases opened", str(s.cases)),
            (
                "First response",
                f"{s.first_response.met} met / {s.first_response.missed} missed",
            ),
            ("Time to repair", ttr or "-"),
            ("Commitments", f"{s.commitments_met} met / {s.commitments_missed} missed"),
            ("Escalated cases", str(s.escalated)),
        ]
    )
    doc.paragraph(
        "Availability = 100 x (1 - counted downtime / measured time). Maintenance "
        "windows and periods without monitoring data are excluded from the measured "
        "time and shown separately; they count neither as up nor as down. Figures "
        "for several NTUs add each NTU's time.",
        muted=True,
    )
    services = [row for row in availability.rows if row.scope == "service"]
    doc.heading("Availability per service")
    if services:
        doc.bar_chart(
            [
                Bar(row.id, row.figures.availability)
                for row in services
                if row.figures.availability is not None
            ],
            decimals=3,
        )
    groups = [row for row in availability.rows if row.scope in ("service", "site")]
    if groups:
        doc.table(
            ["Scope", "Name", "Availability", "Downtime", "Outages", "Longest"],
            [
                [
                    row.scope,
                    row.id,
                    percent(row.figures.availability),
                    duration(row.figures.downtime),
                    str(row.figures.outages),
                    duration(row.figures.longest_outage),
                ]
                for row in groups
            ],
            col_widths=(1, 2.2, 1.7, 2, 1.3, 2),
            align=("L", "L", "R", "R", "R", "R"),
        )
    else:
        doc.paragraph("No services in the inventory for this customer.")
    doc.heading("Outages")
    lines = [line for line in availability.outages if line.outage.cause.value != "no_data"]
    if lines:
        doc.table(
            ["NTU", "Cause", "Start", "End", "Duration", "Case", "RFO"],
            [
                [
                    line.outage.ntu_id,
                    _cause(line.outage.kind.value, line.outage.cause.value, line.outage.counted),
                    _local(line.start, zone),
                    _local(line.end, zone),
                    duration(line.seconds_in_period),
                    line.outage.case_ref or "-",
                    rfo_link(line) or "not yet published",
                ]
                for line in lines
            ],
            col_widths=(1.2, 1.5, 1.7, 1.7, 1.8, 2.4, 1.7),
        )
    else:
        doc.paragraph("No outages in this period.")
    gaps = [line for line in availability.outages if line.outage.cause.value == "no_data"]
    if gaps:
        doc.heading("Periods without monitoring data", level=2)
        doc.bullets(
            [
                f"{line.outage.ntu_id}: {_local(line.start, zone)} to "
                f"{_local(line.end, zone)} ({duration(line.seconds_in_period)})"
                for line in gaps
            ]
        )
    if availability.maintenance:
        doc.heading("Maintenance", level=2)
        doc.bullets(
            [
                f"{w.ref} {w.title} ({w.behaviour}): {_local(w.start, zone)} to "
                f"{_local(w.end, zone)}"
                for w in availability.maintenance
            ]
        )
    missed = s.missed_cases
    doc.heading("Cases that missed a target", level=2)
    if missed:
        doc.table(
            ["Case", "Priority", "Opened", "Missed"],
            [
                [
                    v.facts.ref,
                    v.facts.priority,
                    _local(v.facts.created_at, zone),
                    ", ".join(m.replace("_", " ") for m in v.missed),
                ]
                for v in missed
            ],
            col_widths=(1.5, 1, 2, 3),
        )
    else:
        doc.paragraph("None.")
    return doc.output()
