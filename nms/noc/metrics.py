"""Prometheus metrics, collected at scrape time from live state and the case database.

Two collectors, both read at scrape time and never updated from hot paths:

* ``NmsCollector`` reads the detector's in-memory state (per NTU and fleet), the probe
  loops' counters and the SNMP client / trap listener counters.
* ``CaseStatsCollector`` serves a ``CaseStats`` snapshot: a handful of aggregate
  SELECTs over ``cases``, ``case_events`` and ``case_notifications``. ``collect()`` is
  synchronous, so the snapshot is refreshed asynchronously by the ``/metrics`` route
  (``metrics_router``) before it generates the page, at most once per ``ttl``; a
  failed refresh keeps the last snapshot and counts the error, and
  ``nms_case_stats_age_seconds`` says how old the served figures are.

Label cardinality (all label values come from closed sets or from the inventory; no
case reference, customer name or free text is ever a label):

==========================  ==========================================  ================
label                       values                                      bound
==========================  ==========================================  ================
``ntu``                     inventory NTU ids                           fleet size (100k)
``state``                   unknown, up, suspect, down, recovering,     6
                            unreachable
``priority``                P1, P2, P3                                  3
``status``                  the open case statuses                      6
``level``                   L1, L2, L3                                  3
``sla``                     first_response, repair                      2
``outcome``                 met, breached                               2
``probe``                   icmp, snmp                                  2
``kind``                    fixed counter names of the SNMP client      < 10
==========================  ==========================================  ================

Per-NTU families: about 12 series per NTU (``nms_ntu_state`` is one series per NTU:
only the current state is exported), plus one ``nms_ntu_open_case_age_seconds``
series per open incident (at most two per NTU). At 100k NTUs that is about 1.2M
series, which one Prometheus holds; everything else is a few dozen series.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Response
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.cases.enums import (
    TERMINAL_STATUSES,
    WORKING_STATUSES,
    CaseEventKind,
    CasePriority,
    CaseSource,
    CaseStatus,
    CaseType,
    EscalationLevel,
)
from caseapi.cases.models import Case, CaseEvent, CaseNotification
from nms.clock import Clock
from nms.detector.availability import Status
from nms.detector.engine import Detector
from nms.noc.exposition import CONTENT_TYPE, render_async
from nms.noc.probe_metrics import (
    LoopCounters,
    ProbeCollector,
    ProbeStats,
    SnmpClientCounters,
    TrapCounters,
)

log = logging.getLogger("nms.metrics")

#: Detection latency buckets (seconds): the P1 rule waits ``down_after`` (10 min).
DETECTION_BUCKETS: tuple[float, ...] = (
    1, 5, 15, 30, 60, 120, 300, 600, 660, 720, 900, 1200, 1800, 3600, 7200,
)  # fmt: skip

_OPEN = sorted(set(CaseStatus) - TERMINAL_STATUSES)
_PRIORITIES = list(CasePriority)


def _always_leader() -> bool:
    return True


class NmsCollector(Collector):
    """Detector, NTU and probe metrics, read at scrape time.

    Args:
        detector: the running detector (its ``ntus`` and ``stats`` are read).
        probes: the ICMP probe loop's counters; None where no probes run in this
            process (``nms detector``).
        clock: for observation ages.
        snmp: the SNMP probe loop (a ``ProbeStats`` or anything with ``cycles`` and
            ``errors``), or None when SNMP is off.
        snmp_client: the SNMP client's ``ClientStats``, if any.
        traps: the trap listener's ``TrapStats``, if any.
        leader: whether this detector is the active one (always in embedded mode).
    """

    def __init__(
        self,
        *,
        detector: Detector,
        probes: ProbeStats | None,
        clock: Clock,
        snmp: LoopCounters | ProbeStats | None = None,
        snmp_client: SnmpClientCounters | None = None,
        traps: TrapCounters | None = None,
        leader: Callable[[], bool] = _always_leader,
    ) -> None:
        self._detector = detector
        self._clock = clock
        self._leader = leader
        self._probes = (
            None
            if probes is None
            else ProbeCollector(probes, snmp=snmp, snmp_client=snmp_client, traps=traps)
        )

    def attach_snmp(
        self,
        loop: LoopCounters | ProbeStats | None,
        client: SnmpClientCounters | None = None,
        traps: TrapCounters | None = None,
    ) -> None:
        """Export the SNMP loop's (and client's, trap listener's) counters from now on."""
        if self._probes is not None:
            self._probes.attach_snmp(loop, client, traps)

    def collect(self) -> Iterator[Metric]:
        yield from self._fleet()
        yield from self._per_ntu()
        yield from self._detector_stats()
        if self._probes is not None:
            yield from self._probes.collect()

    def _fleet(self) -> Iterator[Metric]:
        fleet = GaugeMetricFamily("nms_ntus", "NTUs by detector state", labels=["state"])
        for status, count in self._detector.counts().items():
            fleet.add_metric([status.value], count)
        yield fleet
        tracked = self._detector.ntus.values()
        by_priority = GaugeMetricFamily(
            "nms_ntus_with_open_case",
            "NTUs the detector holds an open proactive incident for, by priority",
            labels=["priority"],
        )
        by_priority.add_metric(["P1"], sum(1 for t in tracked if t.case_ref is not None))
        by_priority.add_metric(["P2"], sum(1 for t in tracked if t.degraded_case_ref is not None))
        yield by_priority
        yield GaugeMetricFamily(
            "nms_ntus_icmp_filtered",
            "NTUs that answer SNMP but not ICMP (not an outage)",
            value=sum(1 for t in tracked if t.snmp.icmp_filtered),
        )

    def _per_ntu(self) -> Iterator[Metric]:
        now = self._clock.now()
        ntu = ["ntu"]
        up = GaugeMetricFamily(
            "nms_ntu_up", "1 if the NTU answers, 0 if not, absent if unknown", labels=ntu
        )
        state = GaugeMetricFamily(
            "nms_ntu_state",
            "Always 1; the label is the NTU's current detector state",
            labels=["ntu", "state"],
        )
        rtt = GaugeMetricFamily(
            "nms_ntu_rtt_seconds", "Average echo round-trip time of the last burst", labels=ntu
        )
        loss = GaugeMetricFamily(
            "nms_ntu_loss_ratio", "Fraction of echoes lost in the last burst", labels=ntu
        )
        jitter = GaugeMetricFamily("nms_ntu_jitter_seconds", "Jitter of the last burst", labels=ntu)
        age = GaugeMetricFamily(
            "nms_ntu_observation_age_seconds",
            "Time since the last probe result for the NTU",
            labels=ntu,
        )
        outage = GaugeMetricFamily(
            "nms_ntu_outage_seconds",
            "Time since the first failed probe of the current (suspected) outage",
            labels=ntu,
        )
        open_case = GaugeMetricFamily(
            "nms_ntu_open_case",
            "1 while the detector holds an open proactive incident for the NTU",
            labels=["ntu", "priority"],
        )
        oper = GaugeMetricFamily(
            "nms_ntu_wan_oper_status",
            "ifOperStatus of the WAN interface (1 up, 2 down, 7 lowerLayerDown, ...)",
            labels=ntu,
        )
        admin = GaugeMetricFamily(
            "nms_ntu_wan_admin_status",
            "ifAdminStatus of the WAN interface (1 up, 2 down, 3 testing)",
            labels=ntu,
        )
        rx = GaugeMetricFamily(
            "nms_ntu_wan_receive_bytes_per_second",
            "WAN interface inbound throughput between the last two SNMP polls",
            labels=ntu,
        )
        tx = GaugeMetricFamily(
            "nms_ntu_wan_transmit_bytes_per_second",
            "WAN interface outbound throughput between the last two SNMP polls",
            labels=ntu,
        )
        errors = GaugeMetricFamily(
            "nms_ntu_wan_errors_per_second",
            "WAN interface in errors + out errors + in discards per second",
            labels=ntu,
        )
        filtered = GaugeMetricFamily(
            "nms_ntu_icmp_filtered", "1 if the NTU answers SNMP but not ICMP", labels=ntu
        )
        reboots = CounterMetricFamily(
            "nms_ntu_reboots", "Reboots seen by SNMP (sysUpTime going back)", labels=ntu
        )
        for ntu_id, tracked in self._detector.ntus.items():
            s = tracked.state
            key = [ntu_id]
            state.add_metric([ntu_id, s.status.value], 1)
            if s.status in (Status.UP, Status.SUSPECT):
                up.add_metric(key, 1 if s.status == Status.UP else 0)
            elif s.status in (Status.DOWN, Status.RECOVERING, Status.UNREACHABLE):
                up.add_metric(key, 0)
            if s.last_observation_at is not None:
                age.add_metric(key, (now - s.last_observation_at).total_seconds())
            if s.outage_start is not None:
                outage.add_metric(key, max((now - s.outage_start).total_seconds(), 0.0))
            open_case.add_metric([ntu_id, "P1"], 1 if tracked.case_ref else 0)
            open_case.add_metric([ntu_id, "P2"], 1 if tracked.degraded_case_ref else 0)
            probe = tracked.last_probe
            if probe is not None:
                if probe.rtt_avg is not None:
                    rtt.add_metric(key, probe.rtt_avg)
                if probe.loss is not None:
                    loss.add_metric(key, probe.loss)
                if probe.jitter is not None:
                    jitter.add_metric(key, probe.jitter)
            view = tracked.snmp
            if view.wan_oper_status is not None:
                oper.add_metric(key, view.wan_oper_status)
            if view.wan_admin_status is not None:
                admin.add_metric(key, view.wan_admin_status)
            if view.in_bps is not None:
                rx.add_metric(key, view.in_bps / 8)
            if view.out_bps is not None:
                tx.add_metric(key, view.out_bps / 8)
            if view.error_rate is not None:
                errors.add_metric(key, view.error_rate)
            if tracked.spec.snmp is not None:
                filtered.add_metric(key, 1 if view.icmp_filtered else 0)
                reboots.add_metric(key, view.reboots)
        yield from (up, state, rtt, loss, jitter, age, outage, open_case)
        yield from (oper, admin, rx, tx, errors, filtered, reboots)

    def _detector_stats(self) -> Iterator[Metric]:
        stats = self._detector.stats
        yield GaugeMetricFamily(
            "nms_detector_leader",
            "1 if this detector is the active one (always 1 in embedded mode)",
            value=1 if self._leader() else 0,
        )
        ages = [
            (self._clock.now() - t.state.last_observation_at).total_seconds()
            for t in self._detector.ntus.values()
            if t.state.last_observation_at is not None
        ]
        if ages:
            yield GaugeMetricFamily(
                "nms_detector_freshest_observation_age_seconds",
                "Time since the newest probe result for any NTU (probes stale if large)",
                value=min(ages),
            )
        for name, doc, value in (
            ("nms_detector_observations", "ICMP results processed", stats.observations),
            ("nms_detector_snmp_observations", "SNMP results processed", stats.snmp_observations),
            ("nms_detector_cases_opened", "P1 cases opened by the detector", stats.cases_opened),
            ("nms_detector_degraded_opened", "P2 cases opened", stats.degraded_opened),
            ("nms_detector_cases_restored", "Cases solved on restoration", stats.cases_restored),
            ("nms_detector_case_errors", "Failed case service calls (retried)", stats.case_errors),
            ("nms_detector_reboots", "NTU reboots seen", stats.reboots),
        ):
            yield CounterMetricFamily(name, doc, value=value)


# -- case statistics from the database ----------------------------------------------------


@dataclass(slots=True)
class PriorityFigures:
    """Open-case figures of one priority."""

    at_risk_first_response: int = 0
    at_risk_repair: int = 0
    breached_first_response: int = 0
    breached_repair: int = 0
    monitoring: int = 0
    rfo_pending: int = 0
    unassigned: int = 0
    oldest_working_at: datetime | None = None
    first_response_met: int = 0
    first_response_missed: int = 0
    repair_met: int = 0
    repair_missed: int = 0


@dataclass(slots=True)
class Histogram:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1

    def family_buckets(self) -> list[tuple[str, float]]:
        result = [(_le(b), float(c)) for b, c in zip(self.buckets, self.counts, strict=True)]
        return [*result, ("+Inf", float(self.count))]


def _le(bound: float) -> str:
    return str(float(bound))


@dataclass(slots=True)
class CaseSnapshot:
    """One refresh's worth of case figures."""

    taken_at: datetime
    open_by: dict[tuple[str, str], int]
    priorities: dict[str, PriorityFigures]
    escalation: dict[tuple[str, str], int]
    notifications_pending: int
    oldest_notification_at: datetime | None
    ntu_case_since: dict[tuple[str, str], datetime]


class CaseStats:
    """Case figures from a few aggregate SELECTs, refreshed at most once per ``ttl``.

    Args:
        sessionmaker: the case database.
        clock: "now" for deadlines and ages, monotonic time for the TTL.
        ttl: serve the last snapshot for this long before refreshing.
        at_risk_within: an SLA deadline due within this is "at risk".
        compliance_window: first-response and repair compliance count the cases
            created within this (a rolling window, so the query stays bounded).
        timeout: give up a refresh after this long (the last snapshot is served).
        buckets: detection latency histogram buckets (seconds).
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
        if not buckets or list(buckets) != sorted(set(buckets)):
            raise ValueError("buckets must be non-empty and strictly increasing")
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._ttl = ttl.total_seconds()
        self._at_risk = at_risk_within
        self._window = compliance_window
        self._timeout = timeout.total_seconds()
        self.snapshot: CaseSnapshot | None = None
        self.refreshed_mono: float | None = None
        self.errors = 0
        self.last_duration = 0.0
        self.latency = {p: Histogram(tuple(buckets)) for p in ("P1", "P2")}
        self.escalations = 0
        self._last_case_id = 0
        self._last_event_id = 0
        self._lock = asyncio.Lock()

    @property
    def at_risk_within(self) -> timedelta:
        return self._at_risk

    async def maybe_refresh(self) -> None:
        """Refresh unless the snapshot is younger than ``ttl``; never raises."""
        async with self._lock:
            mono = self._clock.monotonic()
            if self.refreshed_mono is not None and mono - self.refreshed_mono < self._ttl:
                return
            try:
                async with asyncio.timeout(self._timeout):
                    await self.refresh()
            except Exception:
                self.errors += 1
                log.exception("case statistics refresh failed; serving the last snapshot")

    async def run(self, interval: timedelta) -> None:
        """Refresh every ``interval`` until cancelled (the alternative to route refresh)."""
        while True:
            await self.maybe_refresh()
            await asyncio.sleep(interval.total_seconds())

    async def refresh(self) -> None:
        """Take a new snapshot now.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the database failed (snapshot unchanged).
        """
        started = self._clock.monotonic()
        now = self._clock.now()
        async with self._sessionmaker() as session:
            snapshot = await self._query(session, now)
            await self._incremental(session)
        self.snapshot = snapshot
        self.refreshed_mono = self._clock.monotonic()
        self.last_duration = self.refreshed_mono - started

    async def _query(self, session: AsyncSession, now: datetime) -> CaseSnapshot:
        is_open = Case.status.not_in(TERMINAL_STATUSES)
        working = Case.status.in_(WORKING_STATUSES)
        soon = now + self._at_risk

        def count_if(*conditions: ColumnElement[bool]) -> ColumnElement[int]:
            return func.sum(case((and_(*conditions), 1), else_=0))

        open_by = {
            (str(p), str(s)): n
            for p, s, n in await session.execute(
                select(Case.priority, Case.status, func.count())
                .where(is_open)
                .group_by(Case.priority, Case.status)
            )
        }
        priorities = {str(p): PriorityFigures() for p in _PRIORITIES}
        rows = await session.execute(
            select(
                Case.priority,
                count_if(
                    Case.first_responded_at.is_(None),
                    Case.first_response_breached_at.is_(None),
                    Case.first_response_due_at <= soon,
                ),
                count_if(working, Case.ttr_breached_at.is_(None), Case.ttr_due_at <= soon),
                count_if(
                    Case.first_responded_at.is_(None), Case.first_response_breached_at.is_not(None)
                ),
                count_if(working, Case.ttr_breached_at.is_not(None)),
                count_if(Case.status == CaseStatus.SOLVED),
                count_if(Case.status == CaseStatus.RFO_PENDING),
                count_if(working, Case.assignee.is_(None)),
                func.min(case((working, Case.created_at), else_=None)),
            )
            .where(is_open)
            .group_by(Case.priority)
        )
        for p, fr_risk, ttr_risk, fr_br, ttr_br, mon, rfo, unassigned, oldest in rows:
            fig = priorities.setdefault(str(p), PriorityFigures())
            fig.at_risk_first_response = int(fr_risk or 0)
            fig.at_risk_repair = int(ttr_risk or 0)
            fig.breached_first_response = int(fr_br or 0)
            fig.breached_repair = int(ttr_br or 0)
            fig.monitoring = int(mon or 0)
            fig.rfo_pending = int(rfo or 0)
            fig.unassigned = int(unassigned or 0)
            fig.oldest_working_at = _aware(oldest)
        rows = await session.execute(
            select(
                Case.priority,
                count_if(
                    Case.first_responded_at.is_not(None), Case.first_response_breached_at.is_(None)
                ),
                count_if(Case.first_response_breached_at.is_not(None)),
                count_if(
                    Case.solved_at.is_not(None),
                    Case.ttr_due_at.is_not(None),
                    Case.ttr_breached_at.is_(None),
                ),
                count_if(Case.ttr_breached_at.is_not(None)),
            )
            .where(Case.created_at >= now - self._window)
            .group_by(Case.priority)
        )
        for p, fr_met, fr_missed, ttr_met, ttr_missed in rows:
            fig = priorities.setdefault(str(p), PriorityFigures())
            fig.first_response_met = int(fr_met or 0)
            fig.first_response_missed = int(fr_missed or 0)
            fig.repair_met = int(ttr_met or 0)
            fig.repair_missed = int(ttr_missed or 0)
        escalation = {
            (str(p), str(level)): n
            for p, level, n in await session.execute(
                select(Case.priority, Case.escalation_level, func.count())
                .where(is_open)
                .group_by(Case.priority, Case.escalation_level)
            )
        }
        pending, oldest_note = (
            await session.execute(
                select(func.count(), func.min(CaseNotification.created_at)).where(
                    CaseNotification.sent_at.is_(None)
                )
            )
        ).one()
        ntu_case_since = {
            (str(ntu), str(p)): since
            for ntu, p, since in await session.execute(
                select(Case.ntu_id, Case.priority, func.min(Case.created_at))
                .where(
                    is_open,
                    Case.type == CaseType.INCIDENT,
                    Case.ntu_id.is_not(None),
                    Case.priority.in_((CasePriority.P1, CasePriority.P2)),
                )
                .group_by(Case.ntu_id, Case.priority)
            )
            if since is not None
        }
        return CaseSnapshot(
            taken_at=now,
            open_by=open_by,
            priorities=priorities,
            escalation=escalation,
            notifications_pending=int(pending or 0),
            oldest_notification_at=_aware(oldest_note),
            ntu_case_since=ntu_case_since,
        )

    async def _incremental(self, session: AsyncSession) -> None:
        """Fold in what is new since the last refresh: proactive incidents, escalations."""
        while True:
            rows = (
                await session.execute(
                    select(Case.id, Case.priority, Case.outage_start, Case.created_at)
                    .where(
                        Case.id > self._last_case_id,
                        Case.source == CaseSource.PROACTIVE,
                        Case.type == CaseType.INCIDENT,
                    )
                    .order_by(Case.id)
                    .limit(5000)
                )
            ).all()
            for case_id, priority, start, created in rows:
                self._last_case_id = case_id
                histogram = self.latency.get(str(priority))
                if histogram is not None and start is not None:
                    histogram.observe(max((created - start).total_seconds(), 0.0))
            if len(rows) < 5000:
                break
        count, last = (
            await session.execute(
                select(func.count(), func.max(CaseEvent.id)).where(
                    CaseEvent.id > self._last_event_id,
                    CaseEvent.kind == CaseEventKind.ESCALATED,
                )
            )
        ).one()
        if last is not None:
            self.escalations += int(count)
            self._last_event_id = int(last)


def _aware(value: object) -> datetime | None:
    """Aggregates (MIN) lose the column type on some backends: make them aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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
        for p in _PRIORITIES:
            for s in _OPEN:
                open_cases.add_metric([p.value, s.value], snap.open_by.get((p.value, s.value), 0))
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
        for p in _PRIORITIES:
            fig = snap.priorities.get(p.value, PriorityFigures())
            at_risk.add_metric([p.value, "first_response"], fig.at_risk_first_response)
            at_risk.add_metric([p.value, "repair"], fig.at_risk_repair)
            breached.add_metric([p.value, "first_response"], fig.breached_first_response)
            breached.add_metric([p.value, "repair"], fig.breached_repair)
            for sla, met, missed in (
                ("first_response", fig.first_response_met, fig.first_response_missed),
                ("repair", fig.repair_met, fig.repair_missed),
            ):
                outcomes.add_metric([p.value, sla, "met"], met)
                outcomes.add_metric([p.value, sla, "breached"], missed)
            monitoring.add_metric([p.value], fig.monitoring)
            rfo.add_metric([p.value], fig.rfo_pending)
            unassigned.add_metric([p.value], fig.unassigned)
            age = (now - fig.oldest_working_at).total_seconds() if fig.oldest_working_at else 0.0
            oldest.add_metric([p.value], max(age, 0.0))
        yield from (at_risk, breached, outcomes, monitoring, rfo, unassigned, oldest)
        levels = GaugeMetricFamily(
            "nms_cases_escalation_level",
            "Open cases by priority and escalation level",
            labels=["priority", "level"],
        )
        for p in _PRIORITIES:
            for level in EscalationLevel:
                levels.add_metric(
                    [p.value, level.value], snap.escalation.get((p.value, level.value), 0)
                )
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


def metrics_router(
    registry: CollectorRegistry, *, case_stats: CaseStats | None = None
) -> APIRouter:
    """``GET /metrics``: refresh the case snapshot if it is older than its TTL, then render."""
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        if case_stats is not None:
            await case_stats.maybe_refresh()
        return Response(await render_async(registry), media_type=CONTENT_TYPE)

    return router


@dataclass(frozen=True, slots=True)
class Metrics:
    """What ``build_metrics`` made: serve ``registry`` with ``metrics_router``."""

    registry: CollectorRegistry
    collector: NmsCollector
    case_stats: CaseStats

    def router(self) -> APIRouter:
        return metrics_router(self.registry, case_stats=self.case_stats)


def build_metrics(
    *,
    detector: Detector,
    probes: ProbeStats | None,
    clock: Clock,
    sessionmaker: async_sessionmaker[AsyncSession],
    case_ttl: timedelta = timedelta(seconds=10),
    at_risk_within: timedelta = timedelta(minutes=15),
    leader: Callable[[], bool] = _always_leader,
) -> Metrics:
    """A fresh registry with both collectors (SNMP counters: ``collector.attach_snmp``)."""
    registry = CollectorRegistry()
    collector = NmsCollector(detector=detector, probes=probes, clock=clock, leader=leader)
    registry.register(collector)
    stats = CaseStats(
        sessionmaker=sessionmaker, clock=clock, ttl=case_ttl, at_risk_within=at_risk_within
    )
    registry.register(CaseStatsCollector(stats=stats, clock=clock, ntus=lambda: detector.ntus))
    return Metrics(registry=registry, collector=collector, case_stats=stats)
