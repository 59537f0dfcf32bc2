"""The generated part of an RFO: what the system knows from the case and probe data.

Pure: ``build_facts(case, events, now=...)`` returns a JSON-ready ``dict`` that is
computed live for a draft and frozen into the row at publication.

- Impact starts at ``outage_start`` (the first failed probe; the case creation for a
  reactive case with no probe data) and ends at ``restored_at``. While not restored
  the impact is open-ended: ``impact_end`` null, ``impact_ongoing`` true, and the
  duration so far is reported up to ``now``. A duration is never negative.
- The customer-facing timeline holds opened, detection, first response, escalation
  levels (without internal reasons), restoration, recurrences, closure and earlier
  RFO publications: never comments, hand-offs or assignments.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from caseapi.cases.enums import CaseEventKind
from caseapi.cases.models import Case, CaseEvent

_DESCRIPTIONS = {
    CaseEventKind.OPENED: "case opened",
    CaseEventKind.FIRST_RESPONSE: "first response from support",
    CaseEventKind.RESTORED: "service restored",
    CaseEventKind.RECURRED: "outage recurred",
    CaseEventKind.REOPENED: "case reopened",
    CaseEventKind.CLOSED: "case closed",
    CaseEventKind.RFO_PUBLISHED: "RFO published",
}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def impact_duration(start: datetime | None, end: datetime | None) -> timedelta | None:
    """``end - start``, clamped at zero; ``None`` when either end is unknown."""
    if start is None or end is None:
        return None
    return max(end - start, timedelta(0))


def _timeline(case: Case, events: Sequence[CaseEvent]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    if case.detected_at is not None:
        entries.append({"at": case.detected_at, "event": "detected", "description": "detected"})
    for event in events:
        if event.kind is CaseEventKind.ESCALATED:
            level = event.data.get("to")
            entries.append(
                {"at": event.at, "event": "escalated", "description": f"escalated to {level}"}
            )
        elif event.kind in _DESCRIPTIONS:
            entries.append(
                {
                    "at": event.at,
                    "event": event.kind.value,
                    "description": _DESCRIPTIONS[event.kind],
                }
            )
    entries.sort(key=lambda entry: entry["at"])
    return [entry | {"at": _iso(entry["at"])} for entry in entries]


def build_facts(case: Case, events: Sequence[CaseEvent], *, now: datetime) -> dict[str, Any]:
    """Return the generated facts of the RFO of ``case`` as of ``now``."""
    start = case.outage_start or case.created_at
    end = case.restored_at
    duration = impact_duration(start, end if end is not None else now)
    escalations = [
        {"at": _iso(event.at), "level": event.data.get("to")}
        for event in events
        if event.kind is CaseEventKind.ESCALATED
    ]
    first_response = getattr(case, "first_responded_at", None)
    return {
        "case_ref": case.ref,
        "case_type": case.type.value,
        "priority": case.priority.value,
        "summary": case.summary,
        "impact_start": _iso(start),
        "impact_end": _iso(end),
        "impact_ongoing": end is None,
        "impact_duration_seconds": (
            int(duration.total_seconds()) if duration is not None else None
        ),
        "detected_at": _iso(case.detected_at),
        "opened_at": _iso(case.created_at),
        "first_response_at": _iso(first_response),
        "escalations": escalations,
        "restored_at": _iso(end),
        "services": [case.service_id] if case.service_id else [],
        "sites": [case.site] if case.site else [],
        "timeline": _timeline(case, events),
    }
