"""Public: the contract between a detector and the case service.

The detector opens, upgrades and restores incidents by dedup key and reports each
NTU's public status; ``IncidentService`` implements ``IncidentSink`` on the case
database. See ``caseapi.cases.contract`` for the rules of each call.
"""

from __future__ import annotations

from caseapi.cases.contract import (
    Affected,
    IncidentOpen,
    IncidentRestore,
    IncidentSink,
    Priority,
    UpstreamOpen,
    node_down_key,
    ntu_degraded_key,
    ntu_down_key,
)
from caseapi.cases.incidents import IncidentService
from caseapi.ntus.status import NtuStatusUpdate

__all__ = [
    "Affected",
    "IncidentOpen",
    "IncidentRestore",
    "IncidentService",
    "IncidentSink",
    "NtuStatusUpdate",
    "Priority",
    "UpstreamOpen",
    "node_down_key",
    "ntu_degraded_key",
    "ntu_down_key",
]
