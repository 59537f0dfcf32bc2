"""The process's CPU, memory and garbage collections (per generation), on /metrics."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from nms.noc.process_metrics import (
    GcTimer,
    ProcessCollector,
    ProcessFigures,
    add_figures,
    own_figures,
    register_process_metrics,
    resident_bytes,
)


class _Ticks:
    """A timer that moves by the seconds it is told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_each_collection_adds_its_time_and_freed_objects_to_its_generation():
    ticks = _Ticks()
    timer = GcTimer(timer=ticks)
    registry = CollectorRegistry()
    registry.register(ProcessCollector(lambda: own_figures(timer)))
    for generation, seconds, freed in ((0, 0.25, 3), (2, 1.5, 40), (0, 0.5, 0)):
        timer._on_collection("start", {"generation": generation})
        ticks.now += seconds
        timer._on_collection("stop", {"generation": generation, "collected": freed})

    def value(name: str, generation: int) -> float | None:
        return registry.get_sample_value(name, {"generation": str(generation)})

    assert [value("nms_gc_collections_total", g) for g in (0, 1, 2)] == [2, 0, 1]
    assert [value("nms_gc_seconds_total", g) for g in (0, 1, 2)] == [0.75, 0, 1.5]
    assert [value("nms_gc_collected_objects_total", g) for g in (0, 1, 2)] == [3, 0, 40]


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    register_process_metrics(registry)
    return registry


def test_a_real_full_collection_is_counted_timed_and_its_garbage_counted(
    registry: CollectorRegistry,
):
    def sample(name: str) -> float:
        value = registry.get_sample_value(name, {"generation": "2"})
        assert value is not None
        return value

    before = [sample(n) for n in ("nms_gc_collections_total", "nms_gc_seconds_total")]
    freed_before = sample("nms_gc_collected_objects_total")
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    gc.collect()
    assert sample("nms_gc_collections_total") == before[0] + 1
    assert sample("nms_gc_seconds_total") > before[1]
    assert sample("nms_gc_collected_objects_total") >= freed_before + 1


def test_the_timer_is_installed_once_however_many_registries_export_it():
    register_process_metrics(CollectorRegistry())
    register_process_metrics(CollectorRegistry())
    timers = [c for c in gc.callbacks if getattr(c, "__self__", None).__class__ is GcTimer]
    assert len(timers) == 1


def test_cpu_and_resident_memory_are_the_process_own(registry: CollectorRegistry):
    def sample(name: str) -> float:
        value = registry.get_sample_value(name)
        assert value is not None
        return value

    cpu, rss = sample("process_cpu_seconds_total"), sample("process_resident_memory_bytes")
    busy_until = time.process_time() + 0.3
    while time.process_time() < busy_until:
        pass
    held = bytearray(64 * 1024 * 1024)  # zeroed, so every page is resident
    assert sample("process_cpu_seconds_total") >= cpu + 0.25
    assert sample("process_resident_memory_bytes") >= rss + 60 * 1024 * 1024
    del held


def test_memory_unknown_where_proc_does_not_tell_it_is_left_out(tmp_path: Path):
    assert resident_bytes(tmp_path / "no-such-file") is None
    registry = CollectorRegistry()
    registry.register(ProcessCollector(lambda: ProcessFigures(cpu_seconds=2.5)))
    assert registry.get_sample_value("process_cpu_seconds_total") == 2.5
    assert registry.get_sample_value("process_resident_memory_bytes") is None


def test_sums_count_every_process_counters_and_the_live_ones_memory():
    one = ProcessFigures(1.5, 100, (10, 2, 1), (0.5, 0.25, 1.0), (7, 0, 3))
    two = ProcessFigures(2.0, 50, (1, 1, 1), (0.5, 0.5, 0.5), (1, 1, 1))
    both = add_figures(add_figures(ProcessFigures(), one, live=True), two, live=False)
    assert both == ProcessFigures(3.5, 100, (11, 3, 2), (1.0, 0.75, 1.5), (8, 1, 4))
    assert ProcessFigures.from_json(both.to_json()) == both
    assert add_figures(ProcessFigures(), two, live=False).rss_bytes is None
