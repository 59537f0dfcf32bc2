"""Settings: defaults, YAML file, NMS_ environment overrides, clear errors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from nms.app.settings import format_duration, load_settings, parse_duration
from nms.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("30s", 30), ("10m", 600), ("24h", 86400), ("3d", 259200), ("1h30m", 5400)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)
    assert parse_duration(format_duration(timedelta(seconds=seconds))) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["", "10", "ten minutes", "10x", "m10", "5q", 10, None, True])
def test_bad_durations_say_what_is_wrong(bad):
    with pytest.raises(ValueError, match=r"duration|unit"):
        parse_duration(bad)


def test_defaults(monkeypatch):
    for name in list(__import__("os").environ):
        if name.startswith("NMS_"):
            monkeypatch.delenv(name)
    s = load_settings()
    assert s.detector.down_after == timedelta(minutes=10)
    assert s.detector.restore_after == 2
    assert s.probes.icmp.interval == timedelta(seconds=30)
    assert s.probes.icmp.count == 5
    assert s.probes.icmp.timeout == timedelta(seconds=1)
    assert s.cases.monitoring_window.p1 == timedelta(hours=24)
    assert s.cases.monitoring_window.p2 == timedelta(hours=72)
    assert s.database.url.startswith("sqlite+aiosqlite:///")


def test_file_then_environment(tmp_path, monkeypatch):
    path = tmp_path / "nms.yaml"
    path.write_text(
        "detector:\n  down_after: 5m\n  stale_after: 1m\nprobes:\n  icmp:\n    count: 3\n"
    )
    monkeypatch.setenv("NMS_DETECTOR__DOWN_AFTER", "5s")
    s = load_settings(path)
    assert s.detector.down_after == timedelta(seconds=5)  # environment wins
    assert s.detector.stale_after == timedelta(minutes=1)  # from the file
    assert s.probes.icmp.count == 3


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("detector:\n  down_after: soon\n", "detector.down_after: 'soon' is not a duration"),
        ("detector:\n  down_after: 10\n", "detector.down_after: 10 has no unit"),
        ("detector:\n  restore_after: 0\n", "detector.restore_after: Input should be greater"),
        ("detector:\n  downafter: 5m\n", "detector.downafter: unknown key"),
        ("probes:\n  icmp:\n    count: many\n", "probes.icmp.count"),
        ("probes:\n  icmp:\n    interval: 1s\n    count: 10\n", "does not fit in the interval"),
        ("database:\n  url: mysql://x\n", "database.url"),
        ("api:\n  listen: localhost\n", "api.listen"),
        ("api:\n  max_body: lots\n", "api.max_body"),
        ("api:\n  max_body: 10\n", "api.max_body: Input should be greater than or equal to 1024"),
        ("metrics:\n  per_ntu: some\n", "metrics.per_ntu: Input should be 'all', 'not_up'"),
        ("metrics:\n  per_ntu_max: 5\n", "metrics.per_ntu_max: unknown key"),
        ("detector: [1, 2\n", "not valid YAML"),
        ("- 1\n", "expected a mapping"),
    ],
)
def test_bad_values_name_the_key(tmp_path, yaml_text, expected):
    path = tmp_path / "nms.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    text = str(info.value)
    assert expected in text
    assert str(path) in text


def test_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("NMS_PROBES__ICMP__TIMEOUT", "fast")
    with pytest.raises(ConfigError, match=r"NMS_PROBES__ICMP__TIMEOUT: probes\.icmp\.timeout"):
        load_settings()


def test_misspelt_environment_variable_is_an_error(monkeypatch):
    monkeypatch.setenv("NMS_DETECTOR__DOWNAFTER", "5s")
    with pytest.raises(ConfigError, match="NMS_DETECTOR__DOWNAFTER: unknown setting"):
        load_settings()


def test_the_body_limit_reads_units(tmp_path):
    path = tmp_path / "nms.yaml"
    path.write_text("api:\n  max_body: 256KiB\n")
    assert load_settings(path).api.max_body == 256 * 1024
    assert load_settings().api.max_body == 1024 * 1024


def test_per_ntu_metrics_from_the_file_or_the_environment(tmp_path, monkeypatch):
    assert load_settings().metrics.per_ntu == "all"
    path = tmp_path / "nms.yaml"
    path.write_text("metrics:\n  per_ntu: none\n")
    assert load_settings(path).metrics.per_ntu == "none"
    monkeypatch.setenv("NMS_METRICS__PER_NTU", "not_up")
    assert load_settings(path).metrics.per_ntu == "not_up"
