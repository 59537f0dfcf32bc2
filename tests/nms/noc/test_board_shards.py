"""The local shard the NOC board shows under ``nms run``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from nms.clock import FakeClock
from nms.noc.board_shards import (
    LOCAL_SHARD_FILE,
    LocalShard,
    PublishedShard,
    publish_local_shard,
)
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


def test_api_workers_show_the_shard_nms_run_published(tmp_path: Path) -> None:
    clock = FakeClock()
    stats = ProbeStats()
    path = tmp_path / LOCAL_SHARD_FILE
    published = PublishedShard(path, clock=clock, stale_after=timedelta(minutes=2))
    assert published() == []  # nothing published yet: no shard to show
    publish_local_shard(path, stats)
    local = LocalShard(stats=stats, clock=clock, stale_after=timedelta(minutes=2))
    assert published() == local()  # never swept
    stats.last_cycle_at, stats.targets = clock.now(), 42
    publish_local_shard(path, stats)
    clock.advance(timedelta(seconds=30))
    assert published() == local()
    assert published()[0].up and published()[0].ntus == 42
    clock.advance(timedelta(minutes=2))  # nms run stopped publishing cycles
    assert published() == local() and not published()[0].up
    path.write_text("{not json")
    assert published() == []
