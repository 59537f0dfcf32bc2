"""``nms.noc.exposition.render`` writes exactly what ``prometheus_client.generate_latest`` does."""

from __future__ import annotations

import asyncio
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from nms.noc.exposition import render, render_async

values = st.one_of(
    st.integers(min_value=-(2**62), max_value=2**62),
    st.floats(allow_nan=True, allow_infinity=True),
)
label_values = st.text(max_size=12)


class Fixed(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


@given(samples=st.lists(st.tuples(label_values, label_values, values), max_size=20))
def test_same_text_as_generate_latest(samples: list[tuple[str, str, float]]) -> None:
    gauge = GaugeMetricFamily(
        "nms_x", 'help with \\ and "quotes"\nand a newline', labels=["a", "b"]
    )
    counter = CounterMetricFamily("nms_y", "a counter", labels=["b", "a"])
    seen: set[tuple[str, str]] = set()
    for a, b, value in samples:
        if (a, b) in seen:
            continue
        seen.add((a, b))
        gauge.add_metric([a, b], value)
        counter.add_metric([b, a], abs(value) if not math.isnan(value) else 0)
    registry = CollectorRegistry()
    registry.register(Fixed([gauge, counter, GaugeMetricFamily("nms_z", "plain", value=3)]))
    assert render(registry) == generate_latest(registry)


def test_client_metrics_with_created_and_buckets() -> None:
    registry = CollectorRegistry()
    Counter("nms_c", "c", ["k"], registry=registry).labels(k="v").inc(3)
    Gauge("nms_g", "g", registry=registry).set(1234567.5)
    histogram = Histogram("nms_h", "h", buckets=(0.001, 1, 10), registry=registry)
    for value in (0.0005, 0.5, 20):
        histogram.observe(value)
    assert render(registry) == generate_latest(registry)


def test_a_bad_family_name_is_refused() -> None:
    registry = CollectorRegistry()
    registry.register(Fixed([GaugeMetricFamily("nms bad", "x", value=1)]))
    with pytest.raises(ValueError, match="invalid metric name"):
        render(registry)


async def test_render_async_runs_off_the_event_loop() -> None:
    registry = CollectorRegistry()
    thread_names: list[str] = []

    class Spy(Collector):
        def collect(self) -> list[Metric]:
            import threading

            thread_names.append(threading.current_thread().name)
            return [GaugeMetricFamily("nms_spy", "spy", value=1)]

    registry.register(Spy())
    thread_names.clear()  # register() collects once to check names
    page = await render_async(registry)
    assert b"nms_spy 1.0" in page
    assert thread_names and thread_names[0] != "MainThread"
    assert asyncio.get_running_loop().is_running()
