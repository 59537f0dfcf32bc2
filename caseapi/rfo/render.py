"""Markdown rendering of an RFO version (``GET /v1/cases/{ref}/rfo?format=md``).

The impact table (``impact_rows``) and the text helpers are shared with the PDF
(``caseapi.rfo.pdf``), so both documents show every figure the same way.
"""

from __future__ import annotations

from typing import Any

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


def state_text(rfo: dict[str, Any]) -> str:
    """``published <time>`` or ``DRAFT``."""
    return "published " + rfo["published_at"] if rfo["published_at"] else "DRAFT"


def impact_rows(facts: dict[str, Any]) -> list[tuple[str, str]]:
    """The impact table of an RFO's ``facts``: ``(label, value)`` rows, in order."""
    duration = format_duration(facts["impact_duration_seconds"])
    impact_end = "ongoing" if facts["impact_ongoing"] else format_value(facts["impact_end"])
    if facts["impact_ongoing"]:
        duration += " so far (ongoing)"
    return [
        ("Priority", str(facts["priority"])),
        ("Impact start", format_value(facts["impact_start"])),
        ("Impact end", impact_end),
        ("Duration", duration),
        ("Detected", format_value(facts["detected_at"])),
        ("Case opened", format_value(facts["opened_at"])),
        ("First response", format_value(facts["first_response_at"])),
        ("Restored", format_value(facts["restored_at"])),
        ("Solved", format_value(facts.get("solved_at"))),
        ("Services affected", format_value(", ".join(facts["services"]))),
        ("Sites affected", format_value(", ".join(facts["sites"]))),
    ]


def render_markdown(rfo: dict[str, Any]) -> str:
    """Render an ``RfoPublic`` dump (``model_dump(mode="json")``) as Markdown."""
    facts = rfo["facts"]
    lines = [
        f"# Reason for outage: {facts['case_ref']}",
        "",
        f"Version {rfo['version']} ({state_text(rfo)})",
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
        *(f"| {label} | {value} |" for label, value in impact_rows(facts)),
        "",
        "## Timeline",
        "",
    ]
    lines += [f"- {entry['at']}: {entry['description']}" for entry in facts["timeline"]] or ["-"]
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
