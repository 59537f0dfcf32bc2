"""Maintenance vocabularies as ``StrEnum`` with stable lowercase values."""

from __future__ import annotations

from enum import StrEnum


class MaintenanceKind(StrEnum):
    PLANNED = "planned"
    EMERGENCY = "emergency"


class MaintenanceBehaviour(StrEnum):
    #: Keep probing, open no proactive case.
    MUTE = "mute"
    #: Do not probe at all.
    SKIP = "skip"


class MaintenanceState(StrEnum):
    """Where a window stands relative to "now" (derived, never stored)."""

    UPCOMING = "upcoming"
    ACTIVE = "active"
    ENDED = "ended"
    CANCELLED = "cancelled"
