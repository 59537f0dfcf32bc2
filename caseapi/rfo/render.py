"""Markdown rendering of an RFO version (``GET /v1/cases/{ref}/rfo?format=md``).

The impact table (``impact_rows``) and the text helpers are shared with the PDF
(``caseapi.rfo.pdf``), so both documents show every figure the same way. Times are
shown in the customer's zone with their UTC offset (``caseapi.core.localtime``); the
JSON keeps them in UTC ISO 8601.
"""

from __future__ import annotations

from typing import Any

from caseapi.core.localtime import DEFAULT_ZONE, format_short, format_time, parse_instant

NOT_SET = "_not provided yet_"


def format_duration(seconds: int | None) -> str:
    """``3660`` -> ``1 h 1 min``; under a minute in seconds; ``unknown`` for ``None``."""
    if seconds is None:
        return "unknown"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    text = " ".join(part for part in parts if part)
    return text or f"{secs} s"


def format_value(value: object) -> str:
    """``value`` as text, ``-`` when empty."""
    return str(value) if value not in (None, "", []) else "-"


def format_when(value: object, zone: str | None) -> str:
    """An ISO time as a reader in ``zone`` reads it, with the offset; ``-`` when empty."""
    instant = parse_instant(value)
    if instant is None:
        return format_value(value)
    return format_time(instant, zone=zone, language="en")


def format_when_short(value: object, zone: str | None) -> str:
    """An ISO time as a table cell in ``zone`` (``2026-03-01 12:50 UTC+01:00``)."""
    instant = parse_instant(value)
    return format_value(value) if instant is None else format_short(instant, zone=zone)


def zone_note(zone: str | None) -> str:
    """The sentence that says which zone a document's times are in."""
    if not zone or zone == DEFAULT_ZONE:
        return f"Times are in {DEFAULT_ZONE}."
    return f"Times are in {zone}, each with its offset from UTC."


def text_or_placeholder(value: str | None, placeholder: str = NOT_SET) -> str:
    """The engineer's text, or ``placeholder`` while it is not written."""
    return value.strip() if value and value.strip() else placeholder


def preventive_text(rfo: dict[str, Any], placeholder: str = NOT_SET) -> str:
    """The preventive actions, or ``Not applicable: <reason>`` when none apply."""
    actions = (rfo.get("preventive_actions") or "").strip()
    reason = (rfo.get("preventive_not_applicable") or "").strip()
    if not actions and reason:
        return f"Not applicable: {reason}"
    return text_or_placeholder(actions, placeholder)


def state_text(rfo: dict[str, Any], zone: str | None = None) -> str:
    """``published <time>`` or ``DRAFT``."""
    return "published " + format_when(rfo["published_at"], zone) if rfo["published_at"] else "DRAFT"


def impact_rows(facts: dict[str, Any], zone: str | None = None) -> list[tuple[str, str]]:
    """The impact table of an RFO's ``facts``: ``(label, value)`` rows, in order."""
    duration = format_duration(facts["impact_duration_seconds"])
    impact_end = "ongoing" if facts["impact_ongoing"] else format_when(facts["impact_end"], zone)
    if facts["impact_ongoing"]:
        duration += " so far (ongoing)"
    return [
        ("Priority", str(facts["priority"])),
        ("Impact start", format_when(facts["impact_start"], zone)),
        ("Impact end", impact_end),
        ("Duration", duration),
        ("Detected", format_when(facts["detected_at"], zone)),
        ("Case opened", format_when(facts["opened_at"], zone)),
        ("First response", format_when(facts["first_response_at"], zone)),
        ("Restored", format_when(facts["restored_at"], zone)),
        ("Solved", format_when(facts.get("solved_at"), zone)),
        ("Services affected", format_value(", ".join(facts["services"]))),
        ("Sites affected", format_value(", ".join(facts["sites"]))),
    ]


def render_markdown(rfo: dict[str, Any], *, zone: str | None = None) -> str:
    """Render an ``RfoPublic`` dump (``model_dump(mode="json")``) as Markdown.

    Args:
        rfo: The version, as the JSON API gives it.
        zone: The customer's IANA zone the times are shown in (``None``: UTC).
    """
    facts = rfo["facts"]
    lines = [
        f"# Reason for outage: {facts['case_ref']}",
        "",
        f"Version {rfo['version']} ({state_text(rfo, zone)})",
        "",
        f"_{zone_note(zone)}_",
        "",
        f"**Summary:** {facts['summary']}",
        "",
        *(
            [f"Part of the upstream incident {facts['incident_ref']}.", ""]
            if facts.get("incident_ref")
            else []
        ),
        "## Impact",
        "",
        "| | |",
        "|---|---|",
        *(f"| {label} | {value} |" for label, value in impact_rows(facts, zone)),
        "",
        "## Timeline",
        "",
    ]
    lines += [
        f"- {format_when_short(entry['at'], zone)}: {entry['description']}"
        for entry in facts["timeline"]
    ] or ["-"]
    lines += [
        "",
        "## Root cause",
        "",
        f"Category: {format_value(rfo['root_cause_category'])}",
        "",
        text_or_placeholder(rfo["root_cause"]),
        "",
        "## Corrective actions",
        "",
        text_or_placeholder(rfo["corrective_actions"]),
        "",
        "## Preventive actions",
        "",
        preventive_text(rfo),
        "",
    ]
    return "\n".join(lines)
