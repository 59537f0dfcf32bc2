"""Public: case statistics for the NOC, as plain data (see ``caseapi.cases.stats``)."""

from __future__ import annotations

from caseapi.cases.stats import (
    CaseStatsSnapshot,
    Detection,
    Escalations,
    PriorityFigures,
    case_snapshot,
    detections_since,
    escalations_since,
)

__all__ = [
    "CaseStatsSnapshot",
    "Detection",
    "Escalations",
    "PriorityFigures",
    "case_snapshot",
    "detections_since",
    "escalations_since",
]
