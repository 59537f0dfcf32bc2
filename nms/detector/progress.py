"""How far the probe data has got: the time at which staleness is judged.

Why. ``stale_after`` runs from an NTU's last observation, stamped when its burst
started. Judged against the wall clock, it also counts how late the results reach
the detector. When the process is short of CPU a sweep overruns: an NTU is stamped
one (long) sweep apart and its result is applied up to a sweep after its stamp, so
at 100,000 NTUs with ~60 s sweeps (interval 30 s, ``stale_after`` 2 min) every NTU
went ``unknown`` while its next result was on its way - and the unknown/up churn
made each observation several times dearer, so the process never caught up.

The rule. Each kind of probe result (ICMP, SNMP) has a clock: the newest
``started_at`` the detector has applied. Staleness is judged at the slowest kind's
clock, never later than the wall clock: an NTU goes stale when results stamped
``stale_after`` after its last one have been applied without it (the sweeps
reached the others, not it). When a clock is itself ``stale_after`` behind the wall
clock (the probe loop or its worker died, the bus is cut) or nothing has been seen
yet (start-up), the wall clock decides, as it always did: missing data still turns
into ``unknown``; lag alone does not. No I/O, no clock: ``now`` is passed in.
"""

from __future__ import annotations

from datetime import datetime, timedelta


class ProbeProgress:
    """The newest result time applied, per kind of probe result."""

    def __init__(self, *, stale_after: timedelta) -> None:
        if stale_after <= timedelta(0):
            raise ValueError("stale_after must be positive")
        self._stale_after = stale_after
        self._clocks: dict[str, datetime] = {}

    def applied(self, kind: str, newest: datetime) -> None:
        """Results of ``kind`` stamped up to ``newest`` have been applied."""
        clock = self._clocks.get(kind)
        if clock is None or newest > clock:
            self._clocks[kind] = newest

    def judged_at(self, now: datetime) -> datetime:
        """The time to judge staleness at (``now`` is the wall clock)."""
        if not self._clocks:
            return now
        slowest = min(self._clocks.values())
        if now - slowest >= self._stale_after:
            return now  # the data stopped: missing data is judged as it always was
        return min(now, slowest)
