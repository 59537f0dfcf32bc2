"""The garbage collector's work in this process, timed.

``nms_gc_collections_total{generation}``, ``nms_gc_seconds_total{generation}`` and
``nms_gc_collected_objects_total{generation}`` (generation ``0``, ``1``, ``2``; ``2``
is a full collection, a walk over every object the process holds). prometheus_client's
own GC collector counts collections but not their time, and a long-running process
with a fleet in memory (100,000 NTUs: millions of objects) can spend a noticeable
share of its CPU there: ``rate(nms_gc_seconds_total[5m])`` is that share of a core
(``runtime.gc_threshold`` sets how often the youngest objects are collected).

One ``GcTimer`` per process, installed on first use (``gc.callbacks``); every
registry of the process may export it.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

GENERATIONS = (0, 1, 2)


class GcTimer:
    """Counts and times the collections of this process, per generation."""

    def __init__(self, timer: Callable[[], float] = time.perf_counter) -> None:
        self._timer = timer
        self._started = 0.0
        self.collections = dict.fromkeys(GENERATIONS, 0)
        self.seconds = dict.fromkeys(GENERATIONS, 0.0)
        self.collected = dict.fromkeys(GENERATIONS, 0)

    def install(self) -> None:
        if self._on_collection not in gc.callbacks:
            gc.callbacks.append(self._on_collection)

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = self._timer()
            return
        generation = info["generation"]
        self.collections[generation] += 1
        self.seconds[generation] += self._timer() - self._started
        self.collected[generation] += info["collected"]


class GcCollector(Collector):
    """Exports a ``GcTimer``'s counters."""

    def __init__(self, timer: GcTimer) -> None:
        self._timer = timer

    def collect(self) -> Iterator[Metric]:
        timer = self._timer
        families: tuple[tuple[str, str, dict[int, Any]], ...] = (
            ("nms_gc_collections", "Garbage collections of this process", timer.collections),
            ("nms_gc_seconds", "Seconds this process spent collecting garbage", timer.seconds),
            ("nms_gc_collected_objects", "Cyclic garbage objects freed", timer.collected),
        )
        for name, documentation, values in families:
            family = CounterMetricFamily(name, documentation, labels=["generation"])
            for generation in GENERATIONS:
                family.add_metric([str(generation)], values[generation])
            yield family


_PROCESS_TIMER = GcTimer()


def register_gc_metrics(registry: CollectorRegistry) -> None:
    """Export this process's garbage collections on ``registry`` (timing starts now,
    if no registry asked before)."""
    _PROCESS_TIMER.install()
    registry.register(GcCollector(_PROCESS_TIMER))
