"""The detector's settings section (``detector.*``): when an NTU is down, degraded, unknown."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, model_validator

from caseapi.settings import Duration, Section, positive
from nms.detector.degradation import Thresholds


class DegradedSettings(Section):
    """Default P2 thresholds (a service profile in the inventory may override them)."""

    window: Duration = timedelta(minutes=15)
    coverage: float = Field(default=0.8, gt=0, le=1)
    loss_open: float = Field(default=0.05, ge=0, le=1)
    loss_clear: float = Field(default=0.02, ge=0, le=1)
    latency_open: Duration | None = timedelta(milliseconds=150)
    latency_clear: Duration | None = timedelta(milliseconds=120)
    errors_open: float | None = Field(default=1.0, ge=0)
    errors_clear: float | None = Field(default=0.2, ge=0)
    flap_count: int = Field(default=4, ge=2)
    flap_window: Duration = timedelta(minutes=15)
    clear_after: Duration = timedelta(minutes=10)

    @model_validator(mode="after")
    def _check(self) -> DegradedSettings:
        self.thresholds()  # the same cross-field rules as the detector applies
        return self

    def thresholds(self) -> Thresholds:
        return Thresholds(**dict(self))


class DetectorSettings(Section):
    down_after: Duration = timedelta(minutes=10)
    """Continuous failure before an NTU is confirmed down and a P1 opens."""
    restore_after: int = Field(default=2, ge=1, le=100)
    """Consecutive good probe cycles before a down NTU counts as restored."""
    stale_after: Duration = timedelta(minutes=2)
    """No observation for this long -> the NTU is 'unknown' (a NOC alert, never a case)."""
    tick: Duration = timedelta(seconds=1)
    """How often deadlines (staleness) are evaluated."""
    refresh: Duration = timedelta(minutes=1)
    """How often an NTU whose status did not change has its probe figures (last
    observation, RTT, loss, jitter, SNMP rates) written to the database: its saved
    state and the status the API shows. Every other change is written at once."""
    degraded: DegradedSettings = DegradedSettings()

    @model_validator(mode="after")
    def _check(self) -> DetectorSettings:
        for name in ("down_after", "stale_after", "tick", "refresh"):
            positive(getattr(self, name))
        return self
