"""The event loop of the long-running processes: uvloop, or asyncio as the way back."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvloop
from pydantic import ValidationError

from nms.app.loop import environment_loop, loop_name, run, tune_collector
from nms.app.settings import load_settings
from nms.errors import ConfigError


async def _kind() -> str:
    return loop_name(asyncio.get_running_loop())


def test_uvloop_is_the_default():
    assert load_settings(None).runtime.event_loop == "uvloop"
    assert run(_kind(), event_loop="uvloop") == "uvloop"


def test_asyncio_is_the_way_back(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("NMS_RUNTIME__EVENT_LOOP", "asyncio")
    settings = load_settings(None)
    assert settings.runtime.event_loop == "asyncio"
    assert run(_kind(), event_loop=settings.runtime.event_loop) == "asyncio"
    monkeypatch.delenv("NMS_RUNTIME__EVENT_LOOP")
    config = tmp_path / "nms.yaml"
    config.write_text("runtime:\n  event_loop: asyncio\n")
    assert load_settings(config).runtime.event_loop == "asyncio"


def test_the_start_up_log_names_the_loop(caplog: pytest.LogCaptureFixture):
    with caplog.at_level("INFO", logger="nms.runtime"):
        run(_kind(), event_loop="asyncio")
        run(_kind(), event_loop="uvloop")
    assert [r.getMessage() for r in caplog.records] == [
        "event loop: asyncio",
        "event loop: uvloop",
    ]


@pytest.mark.parametrize("where", ["file", "environment"])
def test_an_unknown_loop_is_refused_naming_the_key(
    where: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    config = None
    if where == "file":
        config = tmp_path / "nms.yaml"
        config.write_text("runtime:\n  event_loop: trio\n")
    else:
        monkeypatch.setenv("NMS_RUNTIME__EVENT_LOOP", "trio")
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    origin = str(config) if config else "environment NMS_RUNTIME__EVENT_LOOP"
    assert raised.value.problems == [
        f"{origin}: runtime.event_loop: Input should be 'uvloop' or 'asyncio'"
    ]


async def test_async_tests_run_on_uvloop_as_the_processes_do():
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)


def test_the_benchmarks_follow_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("NMS_RUNTIME__EVENT_LOOP", raising=False)
    assert environment_loop() == "uvloop"
    monkeypatch.setenv("NMS_RUNTIME__EVENT_LOOP", "asyncio")
    assert environment_loop() == "asyncio"
    monkeypatch.setenv("NMS_RUNTIME__EVENT_LOOP", "trio")
    with pytest.raises(ValidationError, match="Input should be 'uvloop' or 'asyncio'"):
        environment_loop()


@pytest.fixture
def collector_thresholds() -> Iterator[None]:
    """Puts the test process's garbage collector thresholds back afterwards."""
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_the_collector_passes_over_young_objects_less_often(collector_thresholds: None):
    assert load_settings(None).runtime.gc_threshold == 10_000
    gc.set_threshold(700, 11, 12)
    tune_collector(10_000)
    assert gc.get_threshold() == (10_000, 11, 12)  # the older generations' as they were


@pytest.mark.parametrize("value", ["50", "lots"])
def test_a_bad_collector_threshold_is_refused_naming_the_key(
    value: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("NMS_RUNTIME__GC_THRESHOLD", value)
    with pytest.raises(ConfigError) as raised:
        load_settings(None)
    (problem,) = raised.value.problems
    assert problem.startswith("environment NMS_RUNTIME__GC_THRESHOLD: runtime.gc_threshold: ")
