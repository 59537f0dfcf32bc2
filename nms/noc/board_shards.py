"""The probe shards the console's NOC board shows (``caseapi.app.ProbeShards``).

``nms run`` probes every NTU itself: one ``local`` shard, alive while its ICMP loop
completes cycles. When its API is served by worker processes (``api.workers`` > 1),
``nms run`` writes that shard's last cycle to a file every second
(``publish_local_shard``) and the workers show it from there (``PublishedShard``).
In the distributed wiring the shards' heartbeats reach the active
detector (``ShardMonitor``), not the ``nms api`` replicas that serve the board, so
those show no shard table (the board points at the NOC overview dashboard).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path

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


#: The file, in the workers' shared directory, ``nms run`` publishes its shard to.
LOCAL_SHARD_FILE = "local-shard.state"


def publish_local_shard(path: Path, stats: ProbeStats) -> None:
    """Write the local shard's last cycle and size to ``path`` (a new file, then a
    rename: a reader never sees half of one). A failed write is retried next time."""
    last = stats.last_cycle_at
    text = json.dumps(
        {"last_cycle_at": None if last is None else last.isoformat(), "ntus": stats.targets}
    )
    scratch = path.with_suffix(".tmp")
    try:
        scratch.write_text(text)
        os.replace(scratch, path)
    except OSError:
        return


class PublishedShard:
    """The local shard of an ``nms run``, as it published it to ``path``
    (``publish_local_shard``); none while it has not."""

    def __init__(self, path: Path, *, clock: Clock, stale_after: timedelta) -> None:
        self._path = path
        self._clock = clock
        self._stale_after = stale_after

    def __call__(self) -> list[ProbeShard]:
        try:
            data = json.loads(self._path.read_text())
            last = (
                None
                if data["last_cycle_at"] is None
                else datetime.fromisoformat(data["last_cycle_at"])
            )
            ntus = int(data["ntus"])
        except (OSError, ValueError, KeyError, TypeError):
            return []
        up = last is not None and self._clock.now() - last < self._stale_after
        return [ProbeShard(shard="local", worker="nms run", up=up, last_seen=last, ntus=ntus)]
