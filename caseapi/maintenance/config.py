"""The ``maintenance.*`` settings: the rules ``MaintenanceService`` applies."""

from __future__ import annotations

from datetime import timedelta

from pydantic import model_validator

from caseapi.core.config import Section
from caseapi.core.durations import Duration, positive


class MaintenanceSettings(Section):
    planned_notice: Duration = timedelta(days=14)
    """Least notice for a planned window (some contracts: 5 working days ~ 7d)."""
    max_duration: Duration = timedelta(days=7)
    emergency_backdate: Duration = timedelta(minutes=5)
    """How far in the past an emergency window may be recorded as having started."""
    refresh: Duration = timedelta(seconds=5)
    """How often the detector re-reads the active windows."""

    @model_validator(mode="after")
    def _check(self) -> MaintenanceSettings:
        positive(self.max_duration)
        positive(self.refresh)
        return self
