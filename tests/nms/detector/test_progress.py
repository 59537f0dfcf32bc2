"""Staleness is judged as far back as the probe data runs late (at most stale_after)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nms.detector.progress import ProbeProgress

T0 = datetime(2026, 3, 1, tzinfo=UTC)
S = timedelta(seconds=1)


def test_before_any_data_the_wall_clock_decides():
    assert ProbeProgress(stale_after=120 * S).judged_at(T0) == T0


def test_late_data_moves_the_judgement_back_by_its_lag():
    progress = ProbeProgress(stale_after=120 * S)
    progress.applied("PingBatch", T0, T0 + 2 * S)
    assert progress.judged_at(T0 + 30 * S) == T0 + 28 * S
    progress.applied("PingBatch", T0 + 60 * S, T0 + 125 * S)  # a sweep overran
    assert progress.judged_at(T0 + 125 * S) == T0 + 60 * S
    progress.applied("PingBatch", T0 + 130 * S, T0 + 131 * S)  # caught up
    assert progress.judged_at(T0 + 140 * S) == T0 + 139 * S


def test_the_kind_furthest_behind_decides():
    progress = ProbeProgress(stale_after=120 * S)
    progress.applied("PingBatch", T0 + 30 * S, T0 + 90 * S)
    progress.applied("SnmpBatch", T0 + 89 * S, T0 + 90 * S)
    assert progress.judged_at(T0 + 100 * S) == T0 + 40 * S


def test_the_lag_counts_for_at_most_stale_after():
    progress = ProbeProgress(stale_after=120 * S)
    progress.applied("PingBatch", T0, T0 + 600 * S)  # a backlog replayed
    assert progress.judged_at(T0 + 600 * S) == T0 + 480 * S


def test_results_stamped_ahead_of_the_clock_are_no_lag():
    progress = ProbeProgress(stale_after=120 * S)
    progress.applied("PingBatch", T0 + 10 * S, T0)  # a prober whose clock runs ahead
    assert progress.judged_at(T0) == T0


def test_stale_after_is_validated():
    with pytest.raises(ValueError, match="stale_after"):
        ProbeProgress(stale_after=timedelta(0))
