"""One check that an RFO tells the same story as its case, shared by API and lab tests.

``assert_rfo_tells_the_case`` compares, for one case, the case's own fields (as the
API gives them), the RFO's impact table (``facts``), its timeline and the Markdown
rendering: each instant must be the same everywhere, and the timeline in order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from caseapi.rfo.render import format_when, format_when_short


def _at(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def _entries(timeline: list[dict[str, Any]], event: str) -> list[datetime | None]:
    return [_at(entry["at"]) for entry in timeline if entry["event"] == event]


def assert_rfo_tells_the_case(
    case: dict[str, Any], rfo: dict[str, Any], markdown: str, *, zone: str | None = None
) -> None:
    """Fail unless ``rfo`` (and its ``markdown``, times in the customer's ``zone``) agree
    with ``case`` and are in order."""
    facts = rfo["facts"]
    timeline = facts["timeline"]
    start = _at(case["outage_start"]) or _at(case["created_at"])
    # The impact table is the case's fields.
    same = {
        "impact_start": start,
        "impact_end": _at(case["restored_at"]),
        "restored_at": _at(case["restored_at"]),
        "detected_at": _at(case["detected_at"]),
        "opened_at": _at(case["created_at"]),
        "first_response_at": _at(case["first_responded_at"]),
        "solved_at": _at(case["solved_at"]),
    }
    for name, expected in same.items():
        assert _at(facts[name]) == expected, (name, facts[name], expected)
    if start is not None and case["restored_at"] is not None:
        restored = _at(case["restored_at"])
        assert restored is not None
        assert facts["impact_duration_seconds"] == int((restored - start).total_seconds())
    # The timeline is in order and its instants are the table's.
    instants = [_at(entry["at"]) for entry in timeline]
    assert instants == sorted(instants), timeline  # type: ignore[type-var]
    if case["outage_start"] is not None:
        assert _entries(timeline, "outage_start") == [same["impact_start"]], timeline
    if case["detected_at"] is not None:
        assert _entries(timeline, "detected") == [same["detected_at"]], timeline
    assert _entries(timeline, "opened") == [same["opened_at"]], timeline
    first = _entries(timeline, "first_response")
    assert first == ([same["first_response_at"]] if case["first_responded_at"] else []), timeline
    if case["restored_at"] is not None:
        assert _entries(timeline, "restored")[-1] == same["restored_at"], timeline
    if case["solved_at"] is not None:
        assert _entries(timeline, "solved")[-1] == same["solved_at"], timeline
    # The Markdown says the same, in the same order.
    for label, name in (
        ("Impact start", "impact_start"),
        ("Detected", "detected_at"),
        ("Case opened", "opened_at"),
        ("First response", "first_response_at"),
        ("Restored", "restored_at"),
        ("Solved", "solved_at"),
    ):
        # In the customer's zone, with the offset; the JSON keeps ISO UTC.
        assert f"| {label} | {format_when(facts[name], zone)} |" in markdown, (label, markdown)
    lines = [
        f"- {format_when_short(entry['at'], zone)}: {entry['description']}" for entry in timeline
    ]
    positions = [markdown.index(line) for line in lines]
    assert positions == sorted(positions), markdown
