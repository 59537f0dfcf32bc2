"""TEMPORARY re-export: the detector -> case contract is ``caseapi.incidents``."""

from caseapi.incidents import (
    Affected,
    IncidentOpen,
    IncidentSink,
    NtuStatusUpdate,
    Priority,
    UpstreamOpen,
    node_down_key,
    ntu_degraded_key,
    ntu_down_key,
)
from caseapi.incidents import IncidentSink as CaseSink

__all__ = [
    "Affected",
    "CaseSink",
    "IncidentOpen",
    "IncidentSink",
    "NtuStatusUpdate",
    "Priority",
    "UpstreamOpen",
    "node_down_key",
    "ntu_degraded_key",
    "ntu_down_key",
]
