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
file from zero) never makes a counter go back: the sums only grow. The files carry
each worker's CPU, memory and garbage collections too (``nms.noc.process_metrics``):
counters summed over every file, memory over the workers alive (a file written in
the last ``LIVE_WITHIN`` seconds).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from caseapi.app import Limit, RateLimitStats
from nms.noc.process_metrics import ProcessFigures, add_figures, own_figures

#: Seconds since its file was written after which a worker counts as gone (it writes
#: every second while it serves).
LIVE_WITHIN: Final = 5.0


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


def stats_to_json(stats: RateLimitStats, process: ProcessFigures | None = None) -> str:
    data: dict[str, Any] = {
        "rejected": {limit.value: n for limit, n in stats.rejected.items()},
        "storage_errors": stats.storage_errors,
    }
    if process is not None:
        data["process"] = process.to_json()
    return json.dumps(data)


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


class WorkersStats:
    """The counters every worker of an API published in ``directory``, summed.

    ``total`` sums the rate limit counters and ``process_total`` the process figures of
    every file (read by a worker answering a scrape, or by ``nms run`` for the API
    workers it runs).
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def total(self) -> RateLimitStats:
        total = RateLimitStats()
        for _, data in self._files():
            with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
                total = add_stats(total, stats_from_json(data))
        return total

    def process_total(self) -> ProcessFigures:
        """Every worker's CPU and garbage collections, and the memory of those alive."""
        total = ProcessFigures()
        # Compared with file times: the wall clock, as the file system's.
        now = time.time()
        for written_at, data in self._files():
            with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
                figures = ProcessFigures.from_json(json.loads(data)["process"])
                total = add_figures(total, figures, live=now - written_at <= LIVE_WITHIN)
        return total

    def _files(self) -> list[tuple[float, str]]:
        """Each worker's file: when it was written, and its text."""
        files: list[tuple[float, str]] = []
        for path in sorted(self._directory.glob("*.json")):
            # A file removed meanwhile (the directory going away at the end) or
            # unreadable counts as nothing; never a failed scrape.
            with contextlib.suppress(OSError):
                files.append((path.stat().st_mtime, path.read_text()))
        return files


class SharedStats(WorkersStats):
    """One worker's view of the counters of all workers of an ``nms api``.

    ``publish`` writes this worker's ``stats`` and process figures to
    ``<directory>/<name>.json`` (a new file, then a rename: a reader never sees half of
    one); ``total`` and ``process_total`` publish, then sum every worker's file, this
    one's included.
    """

    def __init__(
        self,
        directory: Path,
        name: str,
        stats: RateLimitStats,
        *,
        figures: Callable[[], ProcessFigures] = own_figures,
    ) -> None:
        super().__init__(directory)
        self._path = directory / f"{name}.json"
        self._stats = stats
        self._figures = figures

    def publish(self) -> None:
        # Written even when nothing changed: its age tells the others it is alive.
        scratch = self._path.with_suffix(".tmp")
        try:
            scratch.write_text(stats_to_json(self._stats, self._figures()))
            os.replace(scratch, self._path)
        except OSError:
            # The directory gone (the workers ending without their parent) or full:
            # the next publication tries again; serving never stops for it.
            return

    def _files(self) -> list[tuple[float, str]]:
        self.publish()  # this worker's figures as of now
        return super()._files()
