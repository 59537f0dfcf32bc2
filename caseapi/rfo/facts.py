"""The generated part of an RFO: what the system knows from the case and probe data.

Pure: ``build_facts(case, events, now=...)`` returns a JSON-ready ``dict`` that is
computed live for a draft and frozen into the row at publication.

One source for each instant, so the impact table and the timeline never disagree:

======================  =====================================================
outage start            ``case.outage_start`` (the first failed probe; the case
                        creation for a reactive case with no probe data)
detection               ``case.detected_at``
opened                  ``case.created_at``
first response          ``case.first_responded_at``
restored                ``case.restored_at``; earlier restorations of a case that
                        recurred come from their ``restored`` entry's data
solved                  ``case.solved_at``; earlier ones from their entry's time
======================  =====================================================

- The impact ends at ``restored_at``. While not restored the impact is open-ended:
  ``impact_end`` null, ``impact_ongoing`` true, and the duration so far is reported
  up to ``now``. A duration is never negative.
- The customer-facing timeline is in chronological order and holds every step the
  customer saw: outage start, detection, opening, the case taken in hand, the first
  response, public updates from support and the customer's replies, promised
  updates, estimated restoration times, priority changes, waiting on the customer or
  a supplier, escalation levels (without internal reasons), restoration, solving,
  recurrences and reopenings, earlier RFO publications and closure. Never internal
  notes, hand-offs, who works the case or internal reasons.
- ``probe`` holds the NTU's latest probe figures as of the facts' ``now`` (for a
  published version: at publication) - RTT and jitter in ms, loss in %, when they
  were observed and, while the NTU is degraded, why - or ``None`` for a case without
  an NTU or an NTU never probed. The detector keeps only the latest burst, so these
  show the service as it was then, not during the outage.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from caseapi.cases.enums import CaseEventKind
from caseapi.cases.models import Case, CaseEvent
from caseapi.ntus.models import NtuState

K = CaseEventKind

#: Public update bodies are quoted in the timeline up to this length.
QUOTE_LENGTH: Final = 200

_FIXED: Final = {
    K.OPENED: "case opened",
    K.RECURRED: "outage recurred: the case is back in work",
    K.REOPENED: "case reopened",
    K.CLOSED: "case closed",
    K.RFO_PUBLISHED: "RFO published",
    K.CUSTOMER_REPLIED: "reply from the customer",
}
_WAITING: Final = {
    "waiting_customer": "waiting for information from the customer",
    "waiting_supplier": "waiting on a supplier",
    "cancelled": "case cancelled",
}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def impact_duration(start: datetime | None, end: datetime | None) -> timedelta | None:
    """``end - start``, clamped at zero; ``None`` when either end is unknown."""
    if start is None or end is None:
        return None
    return max(end - start, timedelta(0))


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= QUOTE_LENGTH else text[: QUOTE_LENGTH - 1] + "…"


_PROMISES: Final = {
    "next_update": "the next update",
    "engineer_on_site": "an engineer on site",
    "callback": "a call back",
}


def _promise(data: dict[str, Any]) -> str:
    what = _PROMISES.get(str(data.get("kind")), "an action")
    due = _time(data.get("due_at"))
    return f"{what} by {due.isoformat()}" if due else what


class _Timeline:
    def __init__(self) -> None:
        self.entries: list[tuple[datetime, int, dict[str, Any]]] = []

    def add(self, at: datetime | None, event: str, description: str) -> None:
        if at is not None:
            # The sequence number keeps same-instant steps in the order they happened.
            self.entries.append(
                (at, len(self.entries), {"event": event, "description": description})
            )

    def sorted(self) -> list[dict[str, Any]]:
        ordered = sorted(self.entries, key=lambda item: (item[0], item[1]))
        return [{"at": at.isoformat(), **entry} for at, _, entry in ordered]


def _event_steps(timeline: _Timeline, case: Case, events: Sequence[CaseEvent]) -> None:
    """Add the steps the timeline entries record (the case's own instants aside)."""
    solved = [e for e in events if (e.data or {}).get("to") == "solved"]
    restorations = [e for e in solved if (e.data or {}).get("restored_at")]
    taken = False
    for event in events:
        data = event.data or {}
        kind = event.kind
        if kind is K.OPENED:
            timeline.add(case.created_at, "opened", _FIXED[kind])
        elif kind is K.FIRST_RESPONSE:
            timeline.add(
                case.first_responded_at or event.at, "first_response", "first response from support"
            )
        elif kind is K.ASSIGNED and data.get("assignee") and not taken:
            taken = True  # later re-assignments are internal
            timeline.add(event.at, "taken", "taken in hand by an engineer")
        elif kind is K.COMMENT_ADDED and data.get("visibility") == "public":
            if data.get("author_role") == "customer":
                continue  # the customer_replied entry says it
            timeline.add(
                event.at,
                "public_update",
                "update from support: " + _quote(str(data.get("body", ""))),
            )
        elif kind is K.COMMITMENT_SET:
            timeline.add(event.at, "commitment", f"support promised {_promise(data)}")
        elif kind is K.COMMITMENT_MISSED:
            timeline.add(event.at, "commitment_missed", f"missed: {_promise(data)}")
        elif kind is K.ESCALATED:
            timeline.add(event.at, "escalated", f"escalated to {data.get('to')}")
        elif kind is K.PRIORITY_CHANGED and "from" in data:
            timeline.add(
                event.at,
                "priority_changed",
                f"priority changed from {data['from']} to {data['to']}",
            )
        elif kind is K.STATUS_CHANGED and data.get("to") in _WAITING:
            timeline.add(event.at, str(data["to"]), _WAITING[str(data["to"])])
        elif kind is K.ETR_SET:
            etr = _time(data.get("etr"))
            text = (
                f"estimated restoration time: {etr.isoformat()}"
                if etr
                else "estimated restoration time withdrawn"
            )
            timeline.add(event.at, "etr", text)
        elif kind is K.RECURRED:
            timeline.add(_time(data.get("outage_start")) or event.at, "recurred", _FIXED[kind])
        elif kind in _FIXED:
            timeline.add(event.at, kind.value, _FIXED[kind])
        if event in restorations:
            last = event is restorations[-1]
            restored = case.restored_at if last and case.restored_at else _time(data["restored_at"])
            timeline.add(restored, "restored", "service restored")
        if event in solved:
            last = event is solved[-1]
            at = case.solved_at if last and case.solved_at else event.at
            until = _time(data.get("monitoring_until"))
            text = "case solved" + (f"; monitored until {until.isoformat()}" if until else "")
            timeline.add(at, "solved", text)


def build_timeline(case: Case, events: Sequence[CaseEvent]) -> list[dict[str, Any]]:
    """The customer-facing timeline of ``case``, oldest first."""
    timeline = _Timeline()
    if case.outage_start is not None:
        timeline.add(case.outage_start, "outage_start", "outage started (first failed probe)")
    timeline.add(case.detected_at, "detected", "outage detected by monitoring")
    _event_steps(timeline, case, events)
    return timeline.sorted()


def _milliseconds(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def probe_figures(state: NtuState | None) -> dict[str, Any] | None:
    """The latest probe figures of an NTU (``None`` without a burst seen)."""
    if state is None or (state.loss is None and state.rtt_avg is None):
        return None
    return {
        "ntu_id": state.ntu_id,
        "observed_at": _iso(state.last_observation_at),
        "status": state.status,
        "rtt_avg_ms": _milliseconds(state.rtt_avg),
        "jitter_ms": _milliseconds(state.jitter),
        "loss_percent": None if state.loss is None else round(state.loss * 100.0, 3),
        "degraded_reasons": state.degraded_reasons,
    }


def build_facts(
    case: Case, events: Sequence[CaseEvent], *, now: datetime, probe: NtuState | None = None
) -> dict[str, Any]:
    """Return the generated facts of the RFO of ``case`` as of ``now``.

    ``probe`` is the state of the case's NTU (its latest probe figures), if any.
    """
    start = case.outage_start or case.created_at
    end = case.restored_at
    duration = impact_duration(start, end if end is not None else now)
    escalations = [
        {"at": _iso(event.at), "level": event.data.get("to")}
        for event in events
        if event.kind is K.ESCALATED
    ]
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
        "first_response_at": _iso(case.first_responded_at),
        "escalations": escalations,
        "restored_at": _iso(end),
        "solved_at": _iso(case.solved_at),
        "services": [case.service_id] if case.service_id else [],
        "sites": [case.site] if case.site else [],
        "timeline": build_timeline(case, events),
        "probe": probe_figures(probe),
    }
