"""Metrics of the distributed wiring: the bus, the probe shards, the delay to the detector.

* ``BusCollector`` exports an ``MqttBus``'s counters (every process that has one).
* ``ShardMonitor`` keeps the last heartbeat of every probe shard (on the active
  detector) and exports ``nms_probe_shard_up``: a worker that died, or cannot reach
  the broker, stops beating and its shard goes to 0 after ``stale_after`` (at once
  when the broker delivers its will). Shards are known from their labels: a
  heartbeat from "1/3" implies shards 2/3 and 3/3 exist, so a shard that never spoke
  to this detector (it died before a failover) is reported down too.
* ``DELAY_BUCKETS``: ``nms_bus_observation_delay_seconds``, from a probe worker
  publishing a batch to the detector having applied and saved it.

Labels: ``role`` (probe, detector), ``kind`` (message kinds), ``reason`` (reject
reasons), ``shard`` (``I/N``, at most a few dozen): all bounded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from nms.bus.mqtt import BusStats
from nms.bus.wire import Heartbeat
from nms.clock import Clock
from nms.probing.shard import Shard

DELAY_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
)  # fmt: skip


class BusCollector(Collector):
    """An ``MqttBus``'s counters, labelled with this process's ``role``.

    Args:
        stats: the bus's ``stats``.
        role: ``probe`` or ``detector``.
    """

    def __init__(self, stats: BusStats, *, role: str) -> None:
        self._stats = stats
        self._role = role

    def collect(self) -> Iterator[Metric]:
        s = self._stats
        connected = GaugeMetricFamily(
            "nms_bus_connected", "1 while connected to the MQTT broker", labels=["role"]
        )
        connected.add_metric([self._role], 1 if s.connected else 0)
        yield connected
        connects = CounterMetricFamily(
            "nms_bus_connects", "Successful connections to the broker", labels=["role"]
        )
        connects.add_metric([self._role], s.connects)
        yield connects
        for name, doc, counts in (
            ("nms_bus_messages_published", "Messages handed to the broker", s.published),
            ("nms_bus_messages_received", "Valid, new messages received", s.received),
        ):
            family = CounterMetricFamily(name, doc, labels=["kind"])
            for kind, value in sorted(counts.items()):
                family.add_metric([kind], value)
            yield family
        rejected = CounterMetricFamily(
            "nms_bus_messages_rejected",
            "Messages refused at the edge (malformed, version, kind, field)",
            labels=["reason"],
        )
        for reason, value in sorted(s.rejected.items()):
            rejected.add_metric([reason], value)
        yield rejected
        yield CounterMetricFamily(
            "nms_bus_duplicates", "Redelivered messages dropped", value=s.duplicates
        )
        yield GaugeMetricFamily(
            "nms_bus_buffered_batches",
            "Messages waiting for the broker (a worker cut off from it)",
            value=s.buffered,
        )
        yield CounterMetricFamily(
            "nms_bus_dropped_batches",
            "Messages dropped because the outgoing buffer was full",
            value=s.dropped,
        )


@dataclass(frozen=True, slots=True)
class ShardView:
    """A shard's last heartbeat and when it arrived."""

    heartbeat: Heartbeat
    at: datetime


class ShardMonitor(Collector):
    """The probe shards as the active detector hears them (see the module docstring).

    Args:
        clock: when heartbeats arrive, and how old they are.
        stale_after: a shard without a heartbeat for this long is down.
    """

    def __init__(self, *, clock: Clock, stale_after: timedelta) -> None:
        self._clock = clock
        self._stale_after = stale_after
        self._last: dict[str, ShardView] = {}
        self._counts: set[int] = set()

    def note(self, heartbeat: Heartbeat) -> None:
        """Remember ``heartbeat`` as its shard's latest."""
        try:
            shard = Shard.parse(heartbeat.shard)
        except ValueError:
            return  # validated at the edge already; a foreign label is ignored
        self._counts.add(shard.count)
        self._last[shard.label] = ShardView(heartbeat, self._clock.now())

    def up(self, label: str) -> bool:
        """Whether shard ``label`` ("I/N") is alive and beat within ``stale_after``."""
        view = self._last.get(label)
        if view is None or not view.heartbeat.alive:
            return False
        return self._clock.now() - view.at < self._stale_after

    def labels(self) -> list[str]:
        """Every shard heard of, and every shard their counts imply, sorted."""
        implied = {Shard(i, n).label for n in self._counts for i in range(1, n + 1)}
        return sorted(implied | set(self._last))

    def collect(self) -> Iterator[Metric]:
        shard = ["shard"]
        up = GaugeMetricFamily(
            "nms_probe_shard_up",
            "1 while the probe shard sends heartbeats (0: its NTUs go unknown, no cases)",
            labels=shard,
        )
        age = GaugeMetricFamily(
            "nms_probe_shard_heartbeat_age_seconds", "Time since the last heartbeat", labels=shard
        )
        targets = GaugeMetricFamily(
            "nms_probe_shard_targets", "Targets of the shard", labels=[*shard, "probe"]
        )
        buffered = GaugeMetricFamily(
            "nms_probe_shard_buffered_batches",
            "Messages the shard holds for the broker",
            labels=shard,
        )
        dropped = CounterMetricFamily(
            "nms_probe_shard_dropped_batches",
            "Messages the shard dropped (buffer full while the broker was away)",
            labels=shard,
        )
        now = self._clock.now()
        for label in self.labels():
            up.add_metric([label], 1 if self.up(label) else 0)
            view = self._last.get(label)
            if view is None:
                continue
            hb = view.heartbeat
            age.add_metric([label], max((now - view.at).total_seconds(), 0.0))
            targets.add_metric([label, "icmp"], hb.icmp_targets)
            targets.add_metric([label, "snmp"], hb.snmp_targets)
            buffered.add_metric([label], hb.buffered)
            dropped.add_metric([label], hb.dropped)
        yield from (up, age, targets, buffered, dropped)
