"""CaseStats.run on a fake clock, its histogram and label sets; no database needed."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import pytest

from caseapi.cases.enums import TERMINAL_STATUSES, CasePriority, CaseStatus, EscalationLevel
from nms.clock import FakeClock
from nms.noc.case_metrics import ESCALATION_LEVELS, OPEN_STATUSES, PRIORITIES
from nms.noc.case_stats import CaseStats
from nms.noc.histogram import Histogram


async def test_run_refreshes_once_per_interval_of_the_clock() -> None:
    clock = FakeClock()
    attempts: list[float] = []

    def unreachable() -> object:
        attempts.append(clock.monotonic())
        raise OSError("database unreachable")

    stats = CaseStats(sessionmaker=unreachable, clock=clock, ttl=timedelta(0))  # type: ignore[arg-type]
    task = asyncio.create_task(stats.run(timedelta(seconds=30)))
    try:
        await clock.run_for(75)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert attempts == [0.0, 30.0, 60.0]
    assert stats.errors == 3 and stats.snapshot is None


def test_histogram_counts_are_cumulative() -> None:
    histogram = Histogram((1, 5, 10))
    for value in (0.5, 1.0, 7.0, 30.0):
        histogram.observe(value)
    assert histogram.family_buckets() == [("1.0", 2.0), ("5.0", 2.0), ("10.0", 3.0), ("+Inf", 4.0)]
    assert (histogram.count, histogram.total) == (4, 38.5)


@pytest.mark.parametrize("buckets", [(), (5, 1), (1, 1)])
def test_histogram_buckets_must_increase(buckets: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        Histogram(buckets)


def test_the_label_sets_are_the_case_services() -> None:
    # nms may not import the case service's enums; its copies must not drift from them.
    assert list(PRIORITIES) == [p.value for p in CasePriority]
    assert list(OPEN_STATUSES) == sorted(s.value for s in set(CaseStatus) - TERMINAL_STATUSES)
    assert list(ESCALATION_LEVELS) == [level.value for level in EscalationLevel]
