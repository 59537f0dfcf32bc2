"""The detector's metrics: per-NTU and fleet state, detector counters, probe loops.

``NmsCollector`` reads the detector's in-memory state at scrape time (never updated
from hot paths): about 12 series per NTU (``nms_ntu_state`` is one series per NTU:
only the current state is exported), labels ``ntu`` (inventory ids), ``state`` (the
six detector states) and ``priority`` (P1, P2). The probe loops' counters, where
probes run in this process, come from ``nms.noc.probe_metrics.ProbeCollector``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from nms.clock import Clock
from nms.detector.availability import Status
from nms.detector.engine import Detector
from nms.noc.probe_metrics import (
    LoopCounters,
    ProbeCollector,
    ProbeStats,
    SnmpClientCounters,
    TrapCounters,
)


def always_leader() -> bool:
    """The ``leader`` of a detector that is the only one (embedded mode)."""
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
        leader: Callable[[], bool] = always_leader,
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
            ("nms_detector_cases_restored", "Cases solved on restoration", stats.cases_restored),
            ("nms_detector_case_errors", "Failed case service calls (retried)", stats.case_errors),
            ("nms_detector_reboots", "NTU reboots seen", stats.reboots),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        opened = CounterMetricFamily(
            "nms_detector_cases_opened",
            "Cases the detector opened: P1 (down, upstream incidents) and P2 (degraded)",
            labels=["priority"],
        )
        opened.add_metric(["P1"], stats.cases_opened)
        opened.add_metric(["P2"], stats.degraded_opened)
        yield opened
