"""Reports as CSV (standard ``csv`` dialect, header row first, UTF-8).

Availability: one row per scope - ``summary`` (the customer, or ``fleet``), then
``customer``, ``service``, ``site`` and ``ntu`` rows - with ``AVAILABILITY_COLUMNS``.
SLA: one row per case created in the period, with ``SLA_COLUMNS``. Empty cells are
"no value" (no availability when nothing was measured, no MTTR without outages).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Final

from caseapi.reports.schemas import figures_dict
from caseapi.reports.service import AvailabilityReport, SlaReport

FIGURE_COLUMNS: Final = (
    "ntus",
    "period_seconds",
    "maintenance_seconds",
    "no_data_seconds",
    "measured_seconds",
    "downtime_seconds",
    "degraded_seconds",
    "availability_percent",
    "outages",
    "longest_outage_seconds",
    "mttr_seconds",
    "mtbf_seconds",
    "p1",
    "p2",
)
AVAILABILITY_COLUMNS: Final = (
    "scope",
    "id",
    "customer_id",
    "period_start",
    "period_end",
    "timezone",
    *FIGURE_COLUMNS,
)
SLA_COLUMNS: Final = (
    "case_ref",
    "customer_id",
    "priority",
    "type",
    "created_at",
    "first_response",
    "time_to_repair",
    "commitments_met",
    "commitments_missed",
    "escalation_level",
    "missed",
)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".") or "0"
    return str(value)


def _write(columns: tuple[str, ...], rows: list[Mapping[str, object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return out.getvalue()


def availability_csv(report: AvailabilityReport) -> str:
    """The availability report as CSV (``AVAILABILITY_COLUMNS``)."""
    period = {
        "period_start": report.period.start.isoformat(),
        "period_end": report.period.end.isoformat(),
        "timezone": report.period.timezone,
    }
    who = report.customer.id if report.customer else "fleet"
    rows: list[Mapping[str, object]] = [
        {
            "scope": "summary",
            "id": who,
            "customer_id": report.customer.id if report.customer else None,
            **period,
            **figures_dict(report.summary),
        }
    ]
    for row in report.rows:
        rows.append(
            {
                "scope": row.scope,
                "id": row.id,
                "customer_id": row.customer_id,
                **period,
                **figures_dict(row.figures),
            }
        )
    return _write(AVAILABILITY_COLUMNS, rows)


def sla_csv(report: SlaReport) -> str:
    """The SLA report as CSV (``SLA_COLUMNS``): every case created in the period."""
    rows: list[Mapping[str, object]] = [
        {
            "case_ref": v.facts.ref,
            "customer_id": v.facts.customer_id,
            "priority": v.facts.priority,
            "type": v.facts.type,
            "created_at": v.facts.created_at.isoformat(),
            "first_response": v.first_response.value,
            "time_to_repair": v.time_to_repair.value,
            "commitments_met": v.facts.commitments_met,
            "commitments_missed": v.facts.commitments_missed,
            "escalation_level": v.facts.escalation_level,
            "missed": " ".join(v.missed),
        }
        for v in report.summary.verdicts
    ]
    return _write(SLA_COLUMNS, rows)
