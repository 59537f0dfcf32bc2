"""The probes' settings section (``probes.*``): how often and how hard NTUs are probed."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator, model_validator

from caseapi.settings import Duration, Section, format_duration, positive
from nms.probing.listen import split_listen


class IcmpSettings(Section):
    enabled: bool = True
    interval: Duration = timedelta(seconds=30)
    count: int = Field(default=5, ge=1, le=100)
    timeout: Duration = timedelta(seconds=1)
    spacing: Duration = timedelta(milliseconds=200)
    """Gap between the echoes of one burst to the same target."""
    spread: Duration | None = None
    """Time over which a cycle's targets are spread; default: most of the interval."""
    privileged: bool | None = None
    """True: raw sockets; False: unprivileged datagram ICMP; unset: raw if permitted."""

    @model_validator(mode="after")
    def _check(self) -> IcmpSettings:
        positive(self.interval)
        positive(self.timeout)
        burst = self.spacing * (self.count - 1) + self.timeout
        if burst >= self.interval:
            raise ValueError(
                f"a burst ({self.count} echoes {format_duration(self.spacing)} apart plus "
                f"{format_duration(self.timeout)} timeout) does not fit in the interval "
                f"{format_duration(self.interval)}"
            )
        if self.spread is not None and self.spread + burst > self.interval:
            raise ValueError("spread plus one burst must fit in the interval")
        return self

    def effective_spread(self) -> timedelta:
        if self.spread is not None:
            return self.spread
        burst = self.spacing * (self.count - 1) + self.timeout
        return (self.interval - burst) * 0.5


class TrapSettings(Section):
    enabled: bool = False
    listen: str = "0.0.0.0:162"

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, listen: str) -> str:
        split_listen(listen)
        return listen


class SnmpSettings(Section):
    enabled: bool = True
    """Poll the NTUs that have an ``snmp`` section in the inventory."""
    interval: Duration = timedelta(seconds=60)
    timeout: Duration = timedelta(seconds=1)
    retries: int = Field(default=1, ge=0, le=10)
    max_in_flight: int = Field(default=1000, ge=1, le=100_000)
    traps: TrapSettings = TrapSettings()

    @model_validator(mode="after")
    def _check(self) -> SnmpSettings:
        positive(self.interval)
        positive(self.timeout)
        if self.timeout * (self.retries + 1) >= self.interval:
            raise ValueError("timeout x (retries + 1) must be shorter than the interval")
        return self


class ProbeSettings(Section):
    icmp: IcmpSettings = IcmpSettings()
    snmp: SnmpSettings = SnmpSettings()
