"""Cluster metrics: probe shards up/down from heartbeats, and the bus counters.

Every figure is read from the text exposition (``generate_latest``) through
prometheus_client's parser: the names and labels are what Prometheus scrapes and
what the alert rules and dashboards use.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from nms.bus.mqtt import BusStats
from nms.bus.wire import Heartbeat
from nms.clock import FakeClock
from nms.noc.cluster_metrics import BusCollector, ShardMonitor

STALE = timedelta(seconds=15)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(collector: Collector) -> Samples:
    """Every sample of ``collector`` as {(name, sorted labels): value}."""
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = sample.value
    return samples


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {dict(labels)[label]: value for (n, labels), value in samples.items() if n == name}


def beat(shard: str, *, alive: bool = True, **counts: int) -> Heartbeat:
    fields = {
        "icmp_targets": 0,
        "snmp_targets": 0,
        "cycles": 0,
        "overruns": 0,
        "buffered": 0,
        "dropped": 0,
    }
    fields.update(counts)
    return Heartbeat(shard=shard, alive=alive, **fields)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=datetime(2026, 3, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def monitor(clock: FakeClock) -> ShardMonitor:
    return ShardMonitor(clock=clock, stale_after=STALE)


def shards_up(monitor: ShardMonitor) -> dict[str, float]:
    return by_label(scrape(monitor), "nms_probe_shard_up", "shard")


# -- ShardMonitor -------------------------------------------------------------------------


def test_no_heartbeat_yet_no_shards(monitor: ShardMonitor) -> None:
    assert monitor.labels() == []
    assert shards_up(monitor) == {}


def test_one_heartbeat_implies_every_shard_of_its_count(monitor: ShardMonitor) -> None:
    monitor.note(beat("1/3"))
    assert monitor.labels() == ["1/3", "2/3", "3/3"]
    assert shards_up(monitor) == {"1/3": 1.0, "2/3": 0.0, "3/3": 0.0}
    # Never heard of: no age, no targets (there is nothing to report).
    ages = by_label(scrape(monitor), "nms_probe_shard_heartbeat_age_seconds", "shard")
    assert ages == {"1/3": 0.0}


def test_up_while_younger_than_stale_after_then_down(
    monitor: ShardMonitor, clock: FakeClock
) -> None:
    monitor.note(beat("2/2"))
    clock.advance(STALE - timedelta(milliseconds=1))
    assert monitor.up("2/2")
    assert shards_up(monitor)["2/2"] == 1.0
    ages = by_label(scrape(monitor), "nms_probe_shard_heartbeat_age_seconds", "shard")
    assert ages["2/2"] == pytest.approx(STALE.total_seconds() - 0.001)

    clock.advance(timedelta(milliseconds=1))
    assert not monitor.up("2/2")
    assert shards_up(monitor) == {"1/2": 0.0, "2/2": 0.0}

    monitor.note(beat("2/2"))  # it comes back
    assert shards_up(monitor)["2/2"] == 1.0
    ages = by_label(scrape(monitor), "nms_probe_shard_heartbeat_age_seconds", "shard")
    assert ages["2/2"] == 0.0


def test_every_heartbeat_restarts_the_staleness(monitor: ShardMonitor, clock: FakeClock) -> None:
    for _ in range(5):
        monitor.note(beat("1/1"))
        clock.advance(STALE * 0.9)
        assert monitor.up("1/1")
    clock.advance(STALE * 0.1)
    assert not monitor.up("1/1")


def test_the_will_is_down_at_once(monitor: ShardMonitor, clock: FakeClock) -> None:
    monitor.note(beat("1/2"))
    monitor.note(beat("2/2"))
    clock.advance(1)
    monitor.note(beat("1/2", alive=False))
    assert shards_up(monitor) == {"1/2": 0.0, "2/2": 1.0}
    assert not monitor.up("1/2")


def test_per_shard_figures_from_the_last_heartbeat(monitor: ShardMonitor, clock: FakeClock) -> None:
    monitor.note(beat("1/2", icmp_targets=40, snmp_targets=3, buffered=9, dropped=1))
    monitor.note(beat("2/2", icmp_targets=38, snmp_targets=0, buffered=0, dropped=0))
    clock.advance(2)
    monitor.note(beat("1/2", icmp_targets=41, snmp_targets=4, buffered=12, dropped=7))
    clock.advance(3)
    samples = scrape(monitor)
    targets = {
        (dict(labels)["shard"], dict(labels)["probe"]): value
        for (name, labels), value in samples.items()
        if name == "nms_probe_shard_targets"
    }
    assert targets == {
        ("1/2", "icmp"): 41,
        ("1/2", "snmp"): 4,
        ("2/2", "icmp"): 38,
        ("2/2", "snmp"): 0,
    }
    assert by_label(samples, "nms_probe_shard_buffered_batches", "shard") == {"1/2": 12, "2/2": 0}
    assert by_label(samples, "nms_probe_shard_dropped_batches_total", "shard") == {
        "1/2": 7,
        "2/2": 0,
    }
    assert by_label(samples, "nms_probe_shard_heartbeat_age_seconds", "shard") == {
        "1/2": 3.0,
        "2/2": 5.0,
    }


def test_a_foreign_label_is_ignored(monitor: ShardMonitor) -> None:
    monitor.note(beat("banana"))
    monitor.note(beat("3/2"))
    assert monitor.labels() == []
    assert shards_up(monitor) == {}


# -- BusCollector -------------------------------------------------------------------------


def test_bus_collector_exports_the_documented_names() -> None:
    stats = BusStats(
        connected=True,
        connects=3,
        disconnects=2,
        published=Counter({"ping": 10, "heartbeat": 4}),
        received=Counter({"skip": 2}),
        rejected=Counter({"malformed": 1, "version": 5}),
        duplicates=6,
        buffered=7,
        dropped=8,
    )
    samples = scrape(BusCollector(stats, role="probe"))
    assert samples[("nms_bus_connected", (("role", "probe"),))] == 1
    assert by_label(samples, "nms_bus_messages_published_total", "kind") == {
        "ping": 10,
        "heartbeat": 4,
    }
    assert by_label(samples, "nms_bus_messages_received_total", "kind") == {"skip": 2}
    assert by_label(samples, "nms_bus_messages_rejected_total", "reason") == {
        "malformed": 1,
        "version": 5,
    }
    assert samples[("nms_bus_duplicates_total", ())] == 6
    assert samples[("nms_bus_buffered_batches", ())] == 7
    assert samples[("nms_bus_dropped_batches_total", ())] == 8
    assert samples[("nms_bus_connects_total", (("role", "probe"),))] == 3


def test_bus_collector_reads_the_live_stats() -> None:
    stats = BusStats()
    registry = CollectorRegistry()
    registry.register(BusCollector(stats, role="detector"))

    def value(name: str, labels: dict[str, str] | None = None) -> float | None:
        return registry.get_sample_value(name, labels or {})

    assert value("nms_bus_connected", {"role": "detector"}) == 0
    assert value("nms_bus_duplicates_total") == 0
    assert value("nms_bus_messages_received_total", {"kind": "ping"}) is None
    stats.connected = True
    stats.received["ping"] += 2
    stats.duplicates += 1
    stats.buffered = 4
    assert value("nms_bus_connected", {"role": "detector"}) == 1
    assert value("nms_bus_messages_received_total", {"kind": "ping"}) == 2
    assert value("nms_bus_duplicates_total") == 1
    assert value("nms_bus_buffered_batches") == 4
