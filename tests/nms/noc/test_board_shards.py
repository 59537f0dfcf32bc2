"""The local shard the NOC board shows under ``nms run``."""

from __future__ import annotations

from datetime import timedelta

from nms.clock import FakeClock
from nms.noc.board_shards import LocalShard
from nms.noc.probe_metrics import ProbeStats


def test_the_local_shard_is_up_while_its_loop_completes_cycles() -> None:
    clock = FakeClock()
    stats = ProbeStats()
    shard = LocalShard(stats=stats, clock=clock, stale_after=timedelta(minutes=2))
    [never] = shard()
    assert (never.shard, never.worker, never.up, never.last_seen) == (
        "local",
        "nms run",
        False,
        None,
    )
    stats.last_cycle_at, stats.targets = clock.now(), 42
    clock.advance(timedelta(seconds=30))
    [sweeping] = shard()
    assert (sweeping.up, sweeping.ntus, sweeping.last_seen) == (True, 42, stats.last_cycle_at)
    clock.advance(timedelta(minutes=2))
    assert not shard()[0].up  # no cycle for stale_after: the probes are not sweeping
