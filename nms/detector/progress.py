"""How far behind the probe data runs: the time at which staleness is judged.

Why. ``stale_after`` runs from an NTU's last observation, stamped when its burst
started. Judged at the wall clock, it also counts how late the results reach the
detector. When the process is short of CPU a sweep overruns: an NTU is stamped one
(long) sweep apart and its result is applied up to a sweep after its stamp, so at
100,000 NTUs with ~60 s sweeps (interval 30 s, ``stale_after`` 2 min) every NTU
went ``unknown`` while its next result was on its way - and the unknown/up churn
made each observation several times dearer, so the process never caught up.

The rule. When a batch is applied, its lag is how long after the newest result in
it was stamped; staleness is judged at the wall clock minus the latest lag of the
kind of probe that runs furthest behind (ICMP, SNMP), and that lag counts for at
most ``stale_after``. So an NTU goes stale when the data has got ``stale_after``
past its last result without it: results that are late are not missing. Data
that stops keeps the lag it last had: a dead probe loop still turns every NTU
``unknown``, ``stale_after`` after its last result plus that lag (at most twice
``stale_after``); in a healthy process the lag is a burst's duration. No I/O, no
clock: times are passed in.
"""

from __future__ import annotations

from datetime import datetime, timedelta


class ProbeProgress:
    """The latest lag of each kind of probe result (ICMP, SNMP)."""

    def __init__(self, *, stale_after: timedelta) -> None:
        if stale_after <= timedelta(0):
            raise ValueError("stale_after must be positive")
        self._stale_after = stale_after
        self._lags: dict[str, timedelta] = {}

    def applied(self, kind: str, newest: datetime, now: datetime) -> None:
        """A batch of ``kind`` whose newest result was stamped ``newest`` was applied
        at ``now``."""
        self._lags[kind] = max(now - newest, timedelta(0))

    def judged_at(self, now: datetime) -> datetime:
        """The time to judge staleness at (``now`` is the wall clock)."""
        if not self._lags:
            return now
        return now - min(max(self._lags.values()), self._stale_after)
