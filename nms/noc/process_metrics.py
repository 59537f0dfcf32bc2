"""This process's CPU, memory and garbage collections, for its ``/metrics``.

- ``process_cpu_seconds_total`` and ``process_resident_memory_bytes``, the names every
  Prometheus client library uses (the RSS where ``/proc`` tells it: Linux);
- ``nms_gc_collections_total{generation}``, ``nms_gc_seconds_total{generation}`` and
  ``nms_gc_collected_objects_total{generation}`` (generation ``0``, ``1``, ``2``; ``2``
  is a full collection, a walk over every object the process holds). prometheus_client's
  own GC collector counts collections but not their time, and a long-running process
  with a fleet in memory (100,000 NTUs: millions of objects) can spend a noticeable
  share of its CPU there: ``rate(nms_gc_seconds_total[5m])`` is that share of a core
  (``runtime.gc_threshold`` sets how often the youngest objects are collected).

One ``GcTimer`` per process, installed on first use (``gc.callbacks``); every
registry of the process may export it. An ``nms api`` with several workers exports
the workers' sums instead (``nms.noc.api_metrics.SharedStats``): a scrape lands on
any one of them, and per-process counters would jump between processes.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

GENERATIONS = (0, 1, 2)

_T = TypeVar("_T")

_STATM = Path("/proc/self/statm")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


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


@dataclass(frozen=True, slots=True)
class ProcessFigures:
    """What one process (or the sum of several) has used so far; per generation
    (``GENERATIONS``) for the collector's figures. ``rss_bytes`` None: not known."""

    cpu_seconds: float = 0.0
    rss_bytes: int | None = None
    gc_collections: tuple[int, int, int] = (0, 0, 0)
    gc_seconds: tuple[float, float, float] = (0.0, 0.0, 0.0)
    gc_collected: tuple[int, int, int] = (0, 0, 0)

    def to_json(self) -> dict[str, Any]:
        return {
            "cpu_seconds": self.cpu_seconds,
            "rss_bytes": self.rss_bytes,
            "gc_collections": list(self.gc_collections),
            "gc_seconds": list(self.gc_seconds),
            "gc_collected": list(self.gc_collected),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProcessFigures:
        """Raises: ValueError, KeyError or TypeError: not what ``to_json`` wrote."""
        rss = data["rss_bytes"]
        return cls(
            cpu_seconds=float(data["cpu_seconds"]),
            rss_bytes=None if rss is None else int(rss),
            gc_collections=_three(data["gc_collections"], int),
            gc_seconds=_three(data["gc_seconds"], float),
            gc_collected=_three(data["gc_collected"], int),
        )


def _three(values: Sequence[Any], kind: Callable[[Any], _T]) -> tuple[_T, _T, _T]:
    first, second, third = (kind(value) for value in values)
    return first, second, third


def add_figures(total: ProcessFigures, more: ProcessFigures, *, live: bool) -> ProcessFigures:
    """``total`` and ``more`` summed: their counters always; ``more``'s memory only if
    its process is ``live`` (a process that ended holds none, its counters stay)."""
    rss = total.rss_bytes
    if live and more.rss_bytes is not None:
        rss = (rss or 0) + more.rss_bytes
    return ProcessFigures(
        cpu_seconds=total.cpu_seconds + more.cpu_seconds,
        rss_bytes=rss,
        gc_collections=_sum(total.gc_collections, more.gc_collections),
        gc_seconds=_sum(total.gc_seconds, more.gc_seconds),
        gc_collected=_sum(total.gc_collected, more.gc_collected),
    )


def _sum(a: tuple[Any, Any, Any], b: tuple[Any, Any, Any]) -> tuple[Any, Any, Any]:
    return a[0] + b[0], a[1] + b[1], a[2] + b[2]


def resident_bytes(statm: Path = _STATM) -> int | None:
    """This process's resident memory, or None where ``/proc`` does not tell it."""
    try:
        return int(statm.read_text().split()[1]) * _PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return None


def own_figures(timer: GcTimer | None = None) -> ProcessFigures:
    """This process's figures now (the process's ``GcTimer`` unless told another)."""
    timer = timer or _PROCESS_TIMER
    times = os.times()
    return ProcessFigures(
        cpu_seconds=times.user + times.system,
        rss_bytes=resident_bytes(),
        gc_collections=_three([timer.collections[g] for g in GENERATIONS], int),
        gc_seconds=_three([timer.seconds[g] for g in GENERATIONS], float),
        gc_collected=_three([timer.collected[g] for g in GENERATIONS], int),
    )


class ProcessCollector(Collector):
    """Exports the ``ProcessFigures`` that ``figures`` returns at each scrape."""

    def __init__(self, figures: Callable[[], ProcessFigures]) -> None:
        self._figures = figures

    def collect(self) -> Iterator[Metric]:
        figures = self._figures()
        yield CounterMetricFamily(
            "process_cpu_seconds",
            "User and system CPU seconds this process has used",
            value=figures.cpu_seconds,
        )
        if figures.rss_bytes is not None:
            yield GaugeMetricFamily(
                "process_resident_memory_bytes",
                "Resident memory of this process, in bytes",
                value=figures.rss_bytes,
            )
        families: tuple[tuple[str, str, tuple[float, float, float]], ...] = (
            ("nms_gc_collections", "Garbage collections of this process", figures.gc_collections),
            ("nms_gc_seconds", "Seconds this process spent collecting garbage", figures.gc_seconds),
            ("nms_gc_collected_objects", "Cyclic garbage objects freed", figures.gc_collected),
        )
        for name, documentation, values in families:
            family = CounterMetricFamily(name, documentation, labels=["generation"])
            for generation in GENERATIONS:
                family.add_metric([str(generation)], values[generation])
            yield family


_PROCESS_TIMER = GcTimer()


def register_process_metrics(
    registry: CollectorRegistry, figures: Callable[[], ProcessFigures] | None = None
) -> None:
    """Export this process's figures on ``registry`` (garbage collections timed from
    now, if no registry asked before), or what ``figures`` returns (the sums of an
    ``nms api``'s workers)."""
    _PROCESS_TIMER.install()
    registry.register(ProcessCollector(figures or own_figures))
