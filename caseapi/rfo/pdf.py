"""PDF rendering of a published RFO version (``GET /v1/cases/{ref}/rfo?format=pdf``).

Pure: ``render_pdf(rfo, customer=..., generated_at=...)`` takes the same ``RfoPublic``
dump as the Markdown (``caseapi.rfo.render``) and shares its impact table and text
helpers, so the two documents show every figure the same way. It shows what the
customer may read and nothing else: the facts (no internal notes ever reach them)
and the engineer's published text; not who wrote or published it.

A published version's document is the same bytes every time: its generation time is
the publication time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from caseapi.core.localtime import DEFAULT_ZONE
from caseapi.rfo.render import (
    format_value,
    format_when,
    format_when_short,
    impact_rows,
    preventive_text,
    state_text,
    text_or_placeholder,
    zone_note,
)
from caseapi.rfo.schemas import to_public
from caseapi.rfo.service import PublishedRfo

PDF_MEDIA_TYPE: Final = "application/pdf"
_NOT_SET: Final = "Not provided yet."


def pdf_filename(ref: str, version: int) -> str:
    """``RFO-<ref>-v<version>.pdf``."""
    return f"RFO-{ref}-v{version}.pdf"


def _figure(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:g} {unit}"


def _probe_rows(probe: dict[str, Any], zone: str | None) -> list[tuple[str, str]]:
    rows = [
        ("NTU", format_value(probe.get("ntu_id"))),
        ("Observed at", format_when(probe.get("observed_at"), zone)),
        ("Status then", format_value(probe.get("status"))),
        ("Packet loss", _figure(probe.get("loss_percent"), "%")),
        ("Round-trip time (average)", _figure(probe.get("rtt_avg_ms"), "ms")),
        ("Jitter", _figure(probe.get("jitter_ms"), "ms")),
    ]
    if probe.get("degraded_reasons"):
        rows.append(("Degraded because", str(probe["degraded_reasons"])))
    return rows


def render_pdf(
    rfo: dict[str, Any],
    *,
    customer: str | None,
    generated_at: datetime,
    zone: str | None = None,
) -> bytes:
    """Render an ``RfoPublic`` dump (``model_dump(mode="json")``) as a PDF.

    Args:
        rfo: The version, as the JSON API gives it.
        customer: The customer's name (or id) to show; ``None`` for none.
        generated_at: The document's generation time (footer, PDF creation date);
            the route passes the publication time.
        zone: The customer's IANA zone every time is shown in, with its offset
            (``None``: UTC).
    """
    facts = rfo["facts"]
    # Imported on first use: fpdf2 (with Pillow and fontTools) loaded into every API
    # process at start-up measurably slowed the embedded detector's cycles under load.
    from caseapi.core.pdf import PdfDocument

    doc = PdfDocument(
        title=f"Reason for outage: {facts['case_ref']}",
        subtitle=f"Version {rfo['version']} ({state_text(rfo, zone)})",
        generated_at=generated_at,
    )
    case_rows = [
        ("Customer", format_value(customer)),
        ("Case", str(facts["case_ref"])),
        ("Summary", format_value(facts.get("summary"))),
        ("Case type", format_value(facts.get("case_type"))),
        ("RFO version", str(rfo["version"])),
        ("Published", format_when(rfo["published_at"], zone)),
        ("Time zone", zone or DEFAULT_ZONE),
    ]
    if facts.get("incident_ref"):
        case_rows.append(("Upstream incident", str(facts["incident_ref"])))
    doc.key_values(case_rows)
    if facts.get("incident_ref"):
        doc.paragraph(
            f"This outage was part of the upstream incident {facts['incident_ref']}; "
            "the cause and actions below are those of that incident.",
            muted=True,
        )

    doc.paragraph(zone_note(zone), muted=True)

    doc.heading("Impact")
    doc.key_values(impact_rows(facts, zone))

    doc.heading("Timeline")
    timeline = facts["timeline"]
    if timeline:
        doc.table(
            [f"Time ({zone or DEFAULT_ZONE})", "What happened"],
            [
                [format_when_short(entry["at"], zone), str(entry["description"])]
                for entry in timeline
            ],
            col_widths=(1.3, 2.0),
        )
    else:
        doc.paragraph("-")

    doc.heading("Root cause")
    doc.key_values([("Category", format_value(rfo["root_cause_category"]))])
    doc.paragraph(text_or_placeholder(rfo["root_cause"], _NOT_SET))

    doc.heading("Corrective actions")
    doc.paragraph(text_or_placeholder(rfo["corrective_actions"], _NOT_SET))

    doc.heading("Preventive actions")
    doc.paragraph(preventive_text(rfo, _NOT_SET))

    probe = facts.get("probe")
    if probe:
        doc.heading("Probe figures")
        doc.paragraph(
            "The latest probe burst of the NTU when this version was published "
            "(the service as it was then, not during the outage).",
            muted=True,
        )
        doc.key_values(_probe_rows(probe, zone))
    return doc.output()


def published_pdf(published: PublishedRfo) -> tuple[str, bytes]:
    """The file name and PDF of a published version (generated at its publication).

    Raises:
        ValueError: The version is not published.
    """
    public = to_public(published.view)
    if public.published_at is None:
        raise ValueError(f"version {public.version} of the RFO of {public.case_ref} is a draft")
    data = render_pdf(
        public.model_dump(mode="json"),
        customer=published.customer_name or published.customer_id,
        generated_at=public.published_at,
        zone=published.view.timezone,
    )
    return pdf_filename(public.case_ref, public.version), data
