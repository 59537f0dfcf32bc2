"""The case figures as metrics: ``CaseStatsCollector`` serves a ``CaseStats`` snapshot.

Every label comes from a closed set: ``priority`` (P1, P2, P3), ``status`` (the open
case statuses), ``level`` (L1, L2, L3), ``sla`` (first_response, repair), ``outcome``
(met, breached), and ``ntu`` only for inventory NTUs with an open P1/P2 incident; no
case reference, customer name or free text is ever a label.
``nms_case_stats_age_seconds`` says how old the served figures are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from caseapi.stats import PriorityFigures
from nms.clock import Clock
from nms.noc.case_stats import CaseStats

# The label values, a closed set each. Every combination is exported (0 when no case
# has it), so a series never vanishes; the case service's enums are not public, and
# tests/nms/noc/test_case_stats.py checks these against them.
PRIORITIES = ("P1", "P2", "P3")
OPEN_STATUSES = (
    "in_progress", "new", "rfo_pending", "solved", "waiting_customer", "waiting_supplier",
)  # fmt: skip
ESCALATION_LEVELS = ("L1", "L2", "L3")


class CaseStatsCollector(Collector):
    """Serves the last ``CaseStats`` snapshot.

    Args:
        stats: the snapshot holder (refreshed by ``metrics_router`` or ``run``).
        clock: for ages.
        ntus: the NTU ids that may appear as a label (the inventory), so a case that
            names an NTU no longer in the inventory cannot add a series.
    """

    def __init__(
        self,
        *,
        stats: CaseStats,
        clock: Clock,
        ntus: Callable[[], Iterable[str]] | None = None,
    ) -> None:
        self._stats = stats
        self._clock = clock
        self._ntus = ntus

    def collect(self) -> Iterator[Metric]:
        stats = self._stats
        mono = self._clock.monotonic()
        yield CounterMetricFamily(
            "nms_case_stats_refresh_errors",
            "Failed refreshes of the case statistics",
            value=stats.errors,
        )
        yield GaugeMetricFamily(
            "nms_case_stats_refresh_duration_seconds",
            "Duration of the last case statistics refresh",
            value=stats.last_duration,
        )
        snap = stats.snapshot
        if snap is None or stats.refreshed_mono is None:
            return
        yield GaugeMetricFamily(
            "nms_case_stats_age_seconds",
            "Age of the case figures served on this page",
            value=mono - stats.refreshed_mono,
        )
        now = self._clock.now()
        open_cases = GaugeMetricFamily(
            "nms_cases_open", "Open cases by priority and status", labels=["priority", "status"]
        )
        for p in PRIORITIES:
            for s in OPEN_STATUSES:
                open_cases.add_metric([p, s], snap.open_by.get((p, s), 0))
        yield open_cases
        pl = ["priority"]
        at_risk = GaugeMetricFamily(
            "nms_cases_sla_at_risk",
            f"Open cases whose SLA deadline is due within "
            f"{int(stats.at_risk_within.total_seconds())} s and not yet met or breached",
            labels=["priority", "sla"],
        )
        breached = GaugeMetricFamily(
            "nms_cases_sla_breached",
            "Open cases whose SLA deadline has passed unmet",
            labels=["priority", "sla"],
        )
        outcomes = GaugeMetricFamily(
            "nms_cases_sla_outcomes",
            "Cases created in the compliance window by SLA and whether it was met",
            labels=["priority", "sla", "outcome"],
        )
        monitoring = GaugeMetricFamily(
            "nms_cases_monitoring", "Solved cases inside their monitoring window", labels=pl
        )
        rfo = GaugeMetricFamily(
            "nms_cases_rfo_pending", "Cases whose window ended, waiting for the RFO", labels=pl
        )
        unassigned = GaugeMetricFamily(
            "nms_cases_unassigned", "Cases being worked with nobody assigned", labels=pl
        )
        oldest = GaugeMetricFamily(
            "nms_cases_oldest_open_age_seconds",
            "Age of the oldest case being worked (new, in progress, waiting)",
            labels=pl,
        )
        for p in PRIORITIES:
            fig = snap.priorities.get(p, PriorityFigures())
            at_risk.add_metric([p, "first_response"], fig.at_risk_first_response)
            at_risk.add_metric([p, "repair"], fig.at_risk_repair)
            breached.add_metric([p, "first_response"], fig.breached_first_response)
            breached.add_metric([p, "repair"], fig.breached_repair)
            for sla, met, missed in (
                ("first_response", fig.first_response_met, fig.first_response_missed),
                ("repair", fig.repair_met, fig.repair_missed),
            ):
                outcomes.add_metric([p, sla, "met"], met)
                outcomes.add_metric([p, sla, "breached"], missed)
            monitoring.add_metric([p], fig.monitoring)
            rfo.add_metric([p], fig.rfo_pending)
            unassigned.add_metric([p], fig.unassigned)
            age = (now - fig.oldest_working_at).total_seconds() if fig.oldest_working_at else 0.0
            oldest.add_metric([p], max(age, 0.0))
        yield from (at_risk, breached, outcomes, monitoring, rfo, unassigned, oldest)
        levels = GaugeMetricFamily(
            "nms_cases_escalation_level",
            "Open cases by priority and escalation level",
            labels=["priority", "level"],
        )
        for p in PRIORITIES:
            for level in ESCALATION_LEVELS:
                levels.add_metric([p, level], snap.escalation.get((p, level), 0))
        yield levels
        yield CounterMetricFamily(
            "nms_case_escalations", "Escalations (L1->L2, L2->L3) recorded", value=stats.escalations
        )
        yield GaugeMetricFamily(
            "nms_notifications_pending",
            "Notification outbox rows not yet dispatched",
            value=snap.notifications_pending,
        )
        note_age = (
            (now - snap.oldest_notification_at).total_seconds()
            if snap.oldest_notification_at
            else 0.0
        )
        yield GaugeMetricFamily(
            "nms_notifications_oldest_pending_age_seconds",
            "Age of the oldest undispatched notification (0 when none)",
            value=max(note_age, 0.0),
        )
        latency = HistogramMetricFamily(
            "nms_detection_latency_seconds",
            "First failed probe to proactive case creation",
            labels=pl,
        )
        for name, histogram in stats.latency.items():
            latency.add_metric([name], histogram.family_buckets(), sum_value=histogram.total)
        yield latency
        known = set(self._ntus()) if self._ntus is not None else None
        per_ntu = GaugeMetricFamily(
            "nms_ntu_open_case_age_seconds",
            "Age of the open P1/P2 incident case on the NTU",
            labels=["ntu", "priority"],
        )
        for (ntu_id, priority), since in sorted(snap.ntu_case_since.items()):
            if known is None or ntu_id in known:
                per_ntu.add_metric([ntu_id, priority], max((now - since).total_seconds(), 0.0))
        yield per_ntu
