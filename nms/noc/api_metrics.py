"""Metrics of the case API itself: its rate limits.

``RateLimitCollector`` serves a ``RateLimiter``'s counters at scrape time:
``nms_api_rate_limited_total{limit}`` (requests refused with 429, per limit: its
setting name under ``api.rate_limits``, a closed set of four, each always exported)
and ``nms_api_rate_limit_storage_errors_total`` (checks not made: the storage failed,
timed out, or is left alone for a few seconds after a failure; those requests passed
unchecked).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from caseapi.app import Limit, RateLimitStats


class RateLimitCollector(Collector):
    """Exports ``stats`` (the ``stats`` of the API's ``RateLimiter``)."""

    def __init__(self, stats: RateLimitStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        rejected = CounterMetricFamily(
            "nms_api_rate_limited",
            "API requests refused with 429 by a rate limit",
            labels=["limit"],
        )
        for limit in Limit:
            rejected.add_metric([limit.value], self._stats.rejected[limit])
        yield rejected
        yield CounterMetricFamily(
            "nms_api_rate_limit_storage_errors",
            "Rate limit checks not made because the storage failed (the request passed)",
            value=self._stats.storage_errors,
        )
