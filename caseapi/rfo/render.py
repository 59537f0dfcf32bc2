"""Markdown rendering of an RFO version (``GET /v1/cases/{ref}/rfo?format=md``)."""

from __future__ import annotations

from typing import Any

_NOT_SET = "_not provided yet_"


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "unknown"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    text = " ".join(part for part in parts if part)
    return text or f"{secs} s"


def _value(value: object) -> str:
    return str(value) if value not in (None, "", []) else "-"


def _text(value: str | None) -> str:
    return value.strip() if value and value.strip() else _NOT_SET


def _preventive(rfo: dict[str, Any]) -> str:
    actions = (rfo.get("preventive_actions") or "").strip()
    reason = (rfo.get("preventive_not_applicable") or "").strip()
    if not actions and reason:
        return f"Not applicable: {reason}"
    return _text(actions)


def render_markdown(rfo: dict[str, Any]) -> str:
    """Render an ``RfoPublic`` dump (``model_dump(mode="json")``) as Markdown."""
    facts = rfo["facts"]
    state = "published " + rfo["published_at"] if rfo["published_at"] else "DRAFT"
    duration = _duration(facts["impact_duration_seconds"])
    impact_end = "ongoing" if facts["impact_ongoing"] else _value(facts["impact_end"])
    if facts["impact_ongoing"]:
        duration += " so far (ongoing)"
    lines = [
        f"# Reason for outage: {facts['case_ref']}",
        "",
        f"Version {rfo['version']} ({state})",
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
        f"| Priority | {facts['priority']} |",
        f"| Impact start | {_value(facts['impact_start'])} |",
        f"| Impact end | {impact_end} |",
        f"| Duration | {duration} |",
        f"| Detected | {_value(facts['detected_at'])} |",
        f"| Case opened | {_value(facts['opened_at'])} |",
        f"| First response | {_value(facts['first_response_at'])} |",
        f"| Restored | {_value(facts['restored_at'])} |",
        f"| Solved | {_value(facts.get('solved_at'))} |",
        f"| Services affected | {_value(', '.join(facts['services']))} |",
        f"| Sites affected | {_value(', '.join(facts['sites']))} |",
        "",
        "## Timeline",
        "",
    ]
    lines += [f"- {entry['at']}: {entry['description']}" for entry in facts["timeline"]] or ["-"]
    lines += [
        "",
        "## Root cause",
        "",
        f"Category: {_value(rfo['root_cause_category'])}",
        "",
        _text(rfo["root_cause"]),
        "",
        "## Corrective actions",
        "",
        _text(rfo["corrective_actions"]),
        "",
        "## Preventive actions",
        "",
        _preventive(rfo),
        "",
    ]
    return "\n".join(lines)
