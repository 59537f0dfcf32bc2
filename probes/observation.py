"""What the probes hand to the detector: targets in, results out.

Probes are stateless: they know a target by an opaque ``key`` (the NTU id) and an
address, and report what the wire said. They know nothing of cases or outages.
"""

from __future__ import annotations

import ipaddress
import statistics
from dataclasses import dataclass
from datetime import datetime

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class PingTarget:
    """One address to sweep; ``key`` is echoed back in the result."""

    key: str
    address: IPAddress


@dataclass(frozen=True, slots=True)
class PingResult:
    """The outcome of one burst of echo requests to one target.

    ``started_at`` is the UTC time the first echo of the burst was sent: an outage
    starts at the first failed probe, so this is the time the detector records.
    RTTs are in seconds, in the order the replies arrived.
    """

    key: str
    address: IPAddress
    started_at: datetime
    sent: int
    received: int
    rtts: tuple[float, ...]
    error: str | None = None  # e.g. "EHOSTUNREACH" when the kernel refused to send

    @property
    def reachable(self) -> bool:
        return self.received > 0

    @property
    def loss(self) -> float:
        """Fraction of echoes lost, 0.0 to 1.0 (1.0 when nothing could be sent)."""
        if self.sent == 0:
            return 1.0
        return 1.0 - self.received / self.sent

    @property
    def rtt_min(self) -> float | None:
        return min(self.rtts) if self.rtts else None

    @property
    def rtt_avg(self) -> float | None:
        return statistics.fmean(self.rtts) if self.rtts else None

    @property
    def rtt_max(self) -> float | None:
        return max(self.rtts) if self.rtts else None

    @property
    def jitter(self) -> float | None:
        """Mean absolute difference of consecutive RTTs (RFC 3550 style), seconds."""
        if len(self.rtts) < 2:
            return None
        diffs = [abs(b - a) for a, b in zip(self.rtts, self.rtts[1:], strict=False)]
        return statistics.fmean(diffs)


@dataclass(frozen=True, slots=True)
class SnmpResult:
    """One SNMP poll of one NTU: what the agent said, or why it said nothing.

    ``reachable`` is true when the agent answered at all (management plane up).
    Counters are raw values as read (the detector computes rates and handles wraps);
    ``counters_64bit`` says whether they came from ifHC* (Counter64) or the 32-bit
    ifIn/OutOctets fallback. ``if_index`` is the WAN interface the poller resolved
    (by configured ifIndex, ifName, ifDescr or ifAlias); None when it could not.
    """

    key: str
    address: IPAddress
    started_at: datetime
    reachable: bool
    error: str | None = None
    sys_uptime: int | None = None  # TimeTicks, hundredths of a second
    if_index: int | None = None
    if_oper_status: int | None = None  # IF-MIB: 1 up, 2 down, 3 testing, ... 7 lowerLayerDown
    if_admin_status: int | None = None  # 1 up, 2 down, 3 testing
    in_octets: int | None = None
    out_octets: int | None = None
    counters_64bit: bool = False
    in_errors: int | None = None
    out_errors: int | None = None
    in_discards: int | None = None
