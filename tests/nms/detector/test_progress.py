"""Staleness is judged where the probe data has got, unless the data stopped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nms.detector.progress import ProbeProgress

T0 = datetime(2026, 3, 1, tzinfo=UTC)
S = timedelta(seconds=1)


def test_before_any_data_the_wall_clock_decides():
    assert ProbeProgress(stale_after=120 * S).judged_at(T0) == T0


def test_late_data_is_judged_at_its_own_time():
    progress = ProbeProgress(stale_after=120 * S)
    progress.applied("PingBatch", T0)
    assert progress.judged_at(T0 + 65 * S) == T0
    progress.applied("PingBatch", T0 + 60 * S)
    progress.applied("PingBatch", T0 + 30 * S)  # an older batch does not move it back
    assert progress.judged_at(T0 + 125 * S) == T0 + 60 * S


def test_the_slowest_kind_decides():
    progress = ProbeProgress(stale_after=120 * S)
    progress.applied("PingBatch", T0 + 60 * S)
    progress.applied("SnmpBatch", T0 + 20 * S)
    assert progress.judged_at(T0 + 90 * S) == T0 + 20 * S


def test_data_that_stopped_is_judged_at_the_wall_clock():
    progress = ProbeProgress(stale_after=120 * S)
    progress.applied("PingBatch", T0 + 500 * S)
    progress.applied("SnmpBatch", T0)  # the SNMP loop died
    assert progress.judged_at(T0 + 119 * S) == T0
    assert progress.judged_at(T0 + 120 * S) == T0 + 120 * S


def test_never_later_than_the_wall_clock():
    progress = ProbeProgress(stale_after=120 * S)
    progress.applied("PingBatch", T0 + 10 * S)  # a prober whose clock runs ahead
    assert progress.judged_at(T0) == T0


def test_stale_after_is_validated():
    with pytest.raises(ValueError, match="stale_after"):
        ProbeProgress(stale_after=timedelta(0))
