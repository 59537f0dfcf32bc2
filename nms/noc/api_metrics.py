"""Metrics of the case API itself: its rate limits.

``RateLimitCollector`` serves a ``RateLimiter``'s counters at scrape time:
``nms_api_rate_limited_total{limit}`` (requests refused with 429, per limit: its
setting name under ``api.rate_limits``, a closed set of four, each always exported)
and ``nms_api_rate_limit_storage_errors_total`` (checks not made: the storage failed,
timed out, or is left alone for a few seconds after a failure; those requests passed
unchecked).

With ``api.workers`` > 1 a scrape lands on one worker; each worker publishes its
counters to a directory the workers share (``SharedStats``: one file per worker
process, written every second and before answering a scrape), and the one answering
sums every file. A file stays after its worker exits, so a restarted worker (a new
file from zero) never makes a counter go back: the sums only grow.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from caseapi.app import Limit, RateLimitStats


class RateLimitCollector(Collector):
    """Exports ``stats`` (the ``stats`` of the API's ``RateLimiter``, or a function
    returning the figures to export, read at each scrape)."""

    def __init__(self, stats: RateLimitStats | Callable[[], RateLimitStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats if isinstance(self._stats, RateLimitStats) else self._stats()
        rejected = CounterMetricFamily(
            "nms_api_rate_limited",
            "API requests refused with 429 by a rate limit",
            labels=["limit"],
        )
        for limit in Limit:
            rejected.add_metric([limit.value], stats.rejected[limit])
        yield rejected
        yield CounterMetricFamily(
            "nms_api_rate_limit_storage_errors",
            "Rate limit checks not made because the storage failed (the request passed)",
            value=stats.storage_errors,
        )


def stats_to_json(stats: RateLimitStats) -> str:
    return json.dumps(
        {
            "rejected": {limit.value: n for limit, n in stats.rejected.items()},
            "storage_errors": stats.storage_errors,
        }
    )


def stats_from_json(text: str) -> RateLimitStats:
    """The figures of one worker's file; unknown limit names are ignored.

    Raises:
        ValueError: Not such a file.
    """
    data = json.loads(text)
    known = {limit.value: limit for limit in Limit}
    stats = RateLimitStats()
    for name, n in dict(data["rejected"]).items():
        if name in known:
            stats.rejected[known[name]] = int(n)
    stats.storage_errors = int(data["storage_errors"])
    return stats


def add_stats(total: RateLimitStats, more: RateLimitStats) -> RateLimitStats:
    """A new ``RateLimitStats``, the sum of both."""
    return RateLimitStats(
        rejected={limit: total.rejected[limit] + more.rejected[limit] for limit in Limit},
        storage_errors=total.storage_errors + more.storage_errors,
    )


class SharedStats:
    """One worker's view of the counters of all workers of an ``nms api``.

    ``publish`` writes this worker's ``stats`` to ``<directory>/<name>.json`` (a new
    file, then a rename: a reader never sees half of one); ``total`` publishes, then
    sums every worker's file, this one's included.
    """

    def __init__(self, directory: Path, name: str, stats: RateLimitStats) -> None:
        self._directory = directory
        self._path = directory / f"{name}.json"
        self._stats = stats
        self._published = ""

    def publish(self) -> None:
        text = stats_to_json(self._stats)
        if text == self._published:
            return
        scratch = self._path.with_suffix(".tmp")
        try:
            scratch.write_text(text)
            os.replace(scratch, self._path)
        except OSError:
            # The directory gone (the workers ending without their parent) or full:
            # the next publication tries again; serving never stops for it.
            return
        self._published = text

    def total(self) -> RateLimitStats:
        self.publish()
        total = RateLimitStats()
        for path in sorted(self._directory.glob("*.json")):
            # A file removed meanwhile (the directory going away at the end) or
            # unreadable counts as nothing; never a failed scrape.
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                total = add_stats(total, stats_from_json(path.read_text()))
        return total
