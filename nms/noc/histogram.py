"""A histogram that a collector exports from its own counts, at scrape time.

``prometheus_client.Histogram`` is updated where the value is observed and exported
with a ``_created`` series; the detection latency is folded in from case rows when
the case figures are refreshed, and exported by a custom collector through a
``HistogramMetricFamily``, so it keeps its own counts here.
"""

from __future__ import annotations

from collections.abc import Sequence


class Histogram:
    """Cumulative counts of observed values per upper bound, plus their sum.

    Args:
        buckets: the upper bounds, strictly increasing (``+Inf`` is implied).

    Raises:
        ValueError: ``buckets`` is empty or not strictly increasing.
    """

    __slots__ = ("_buckets", "_counts", "count", "total")

    def __init__(self, buckets: Sequence[float]) -> None:
        if not buckets or list(buckets) != sorted(set(buckets)):
            raise ValueError("buckets must be non-empty and strictly increasing")
        self._buckets = tuple(float(b) for b in buckets)
        self._counts = [0] * len(self._buckets)
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        """Count ``value`` in every bucket whose bound it does not exceed."""
        self.count += 1
        self.total += value
        for i, bound in enumerate(self._buckets):
            if value <= bound:
                self._counts[i] += 1

    def family_buckets(self) -> list[tuple[str, float]]:
        """``(le, cumulative count)`` pairs, ``+Inf`` last, for ``HistogramMetricFamily``."""
        result = [(str(b), float(c)) for b, c in zip(self._buckets, self._counts, strict=True)]
        return [*result, ("+Inf", float(self.count))]
