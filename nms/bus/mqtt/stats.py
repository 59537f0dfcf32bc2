"""The counters of one MQTT bus, read by ``nms.noc.cluster_metrics.BusCollector``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class BusStats:
    """Counters of one bus, updated by its parts and read by the metrics collector."""

    connected: bool = False  # connected and subscribed: messages move both ways
    connects: int = 0
    disconnects: int = 0  # connections that ended (broker gone, error, stop)
    published: Counter[str] = field(default_factory=Counter)  # acknowledged, by kind
    received: Counter[str] = field(default_factory=Counter)  # valid, not duplicate, by kind
    rejected: Counter[str] = field(default_factory=Counter)  # by WireError.reason
    duplicates: int = 0
    buffered: int = 0  # outgoing messages not yet acknowledged
    dropped: int = 0  # outgoing messages dropped because the buffer was full
    refused: int = 0  # outgoing messages the broker acknowledged but refused (its ACL)
