"""Case figures for the NOC: the case service's statistics, cached per TTL.

``CaseStats`` holds the last ``caseapi.stats.CaseStatsSnapshot``; a collector's
``collect()`` is synchronous, so the snapshot is refreshed asynchronously (by the
``/metrics`` route before it renders, or by ``run``) at most once per ``ttl``. A
failed refresh keeps the last snapshot and counts the error. The detection latency
histograms and the escalation counter only grow, so each refresh folds in just what
is new since the last one (``detections_since``, ``escalations_since``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.stats import CaseStatsSnapshot, case_snapshot, detections_since, escalations_since
from nms.clock import Clock
from nms.noc.histogram import Histogram

log = logging.getLogger("nms.metrics")

#: Detection latency buckets (seconds): the P1 rule waits ``down_after`` (10 min).
DETECTION_BUCKETS: tuple[float, ...] = (
    1, 5, 15, 30, 60, 120, 300, 600, 660, 720, 900, 1200, 1800, 3600, 7200,
)  # fmt: skip

_DETECTIONS_BATCH = 5000  # proactive incidents read per query while catching up


class CaseStats:
    """Case figures from the case service, refreshed at most once per ``ttl``.

    Args:
        sessionmaker: the case database.
        clock: "now" for deadlines and ages, monotonic time for the TTL, and what
            ``run`` waits on.
        ttl: serve the last snapshot for this long before refreshing.
        at_risk_within: an SLA deadline due within this is "at risk".
        compliance_window: first-response and repair compliance count the cases
            created within this (a rolling window, so the query stays bounded).
        timeout: give up a refresh after this long (the last snapshot is served).
        buckets: detection latency histogram buckets (seconds).

    Raises:
        ValueError: a negative duration, or buckets not strictly increasing.
    """

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        ttl: timedelta = timedelta(seconds=10),
        at_risk_within: timedelta = timedelta(minutes=15),
        compliance_window: timedelta = timedelta(days=30),
        timeout: timedelta = timedelta(seconds=5),
        buckets: Sequence[float] = DETECTION_BUCKETS,
    ) -> None:
        if ttl < timedelta(0) or at_risk_within < timedelta(0) or timeout <= timedelta(0):
            raise ValueError("ttl and at_risk_within must not be negative, timeout positive")
        if compliance_window <= timedelta(0):
            raise ValueError("compliance_window must be positive")
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._ttl = ttl.total_seconds()
        self._at_risk = at_risk_within
        self._window = compliance_window
        self._timeout = timeout.total_seconds()
        self.snapshot: CaseStatsSnapshot | None = None
        self.refreshed_mono: float | None = None
        self.errors = 0
        self.last_duration = 0.0
        self.latency = {p: Histogram(buckets) for p in ("P1", "P2")}
        self.escalations = 0
        self._last_case_id = 0
        self._last_event_id = 0
        self._lock = asyncio.Lock()

    @property
    def at_risk_within(self) -> timedelta:
        """How close a deadline is to count as "at risk"."""
        return self._at_risk

    async def maybe_refresh(self) -> None:
        """Refresh unless the snapshot is younger than ``ttl``; never raises."""
        async with self._lock:
            mono = self._clock.monotonic()
            if self.refreshed_mono is not None and mono - self.refreshed_mono < self._ttl:
                return
            try:
                # Real time: this bounds database I/O, which a fake clock does not pace.
                async with asyncio.timeout(self._timeout):
                    await self.refresh()
            except Exception:
                self.errors += 1
                log.exception("case statistics refresh failed; serving the last snapshot")

    async def run(self, interval: timedelta) -> None:
        """Refresh every ``interval`` of the clock until cancelled (instead of the route)."""
        while True:
            await self.maybe_refresh()
            await self._clock.sleep(interval.total_seconds())

    async def refresh(self) -> None:
        """Take a new snapshot now.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the database failed (snapshot unchanged).
        """
        started = self._clock.monotonic()
        snapshot = await case_snapshot(
            self._sessionmaker,
            now=self._clock.now(),
            at_risk_within=self._at_risk,
            compliance_window=self._window,
        )
        await self._incremental()
        self.snapshot = snapshot
        self.refreshed_mono = self._clock.monotonic()
        self.last_duration = self.refreshed_mono - started

    async def _incremental(self) -> None:
        """Fold in what is new since the last refresh: proactive incidents, escalations."""
        while True:
            detections = await detections_since(
                self._sessionmaker, after_case_id=self._last_case_id, limit=_DETECTIONS_BATCH
            )
            for detection in detections:
                self._last_case_id = detection.case_id
                histogram = self.latency.get(detection.priority)
                if histogram is not None and detection.latency is not None:
                    histogram.observe(detection.latency)
            if len(detections) < _DETECTIONS_BATCH:
                break
        escalations = await escalations_since(
            self._sessionmaker, after_event_id=self._last_event_id
        )
        if escalations.last_event_id is not None:
            self.escalations += escalations.count
            self._last_event_id = escalations.last_event_id
