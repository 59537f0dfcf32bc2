"""The probe shards the console's NOC board shows (``caseapi.app.ProbeShards``).

``nms run`` probes every NTU itself: one ``local`` shard, alive while its ICMP loop
completes cycles. In the distributed wiring the shards' heartbeats reach the active
detector (``ShardMonitor``), not the ``nms api`` replicas that serve the board, so
those show no shard table (the board points at the NOC overview dashboard).
"""

from __future__ import annotations

from datetime import timedelta

from caseapi.app import ProbeShard
from nms.clock import Clock
from nms.noc.probe_metrics import ProbeStats


class LocalShard:
    """The one shard of ``nms run``, from its ICMP loop's counters.

    Args:
        stats: The ICMP loop's ``ProbeStats``.
        clock: For the age of the last cycle.
        stale_after: A loop without a finished cycle for this long is shown down.
    """

    def __init__(self, *, stats: ProbeStats, clock: Clock, stale_after: timedelta) -> None:
        self._stats = stats
        self._clock = clock
        self._stale_after = stale_after

    def __call__(self) -> list[ProbeShard]:
        last = self._stats.last_cycle_at
        up = last is not None and self._clock.now() - last < self._stale_after
        return [
            ProbeShard(
                shard="local", worker="nms run", up=up, last_seen=last, ntus=self._stats.targets
            )
        ]
