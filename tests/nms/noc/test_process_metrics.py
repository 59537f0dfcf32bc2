"""The process's garbage collections, counted and timed per generation."""

from __future__ import annotations

import gc

import pytest
from prometheus_client import CollectorRegistry

from nms.noc.gc_metrics import GcCollector, GcTimer, register_gc_metrics


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
    registry.register(GcCollector(timer))
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
    register_gc_metrics(registry)
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
    register_gc_metrics(CollectorRegistry())
    register_gc_metrics(CollectorRegistry())
    timers = [c for c in gc.callbacks if getattr(c, "__self__", None).__class__ is GcTimer]
    assert len(timers) == 1
