"""Prometheus metrics, collected at scrape time from the live detector state.

Label cardinality: per-NTU series carry ``ntu`` and ``customer`` (both bounded by
the inventory); fleet series carry only ``state``. No label takes free text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from nms.clock import Clock
from nms.detector import Detector
from nms.ntu import Status


@dataclass(slots=True)
class ProbeStats:
    """Counters the probe loop updates; read by the collector."""

    cycles: int = 0
    overruns: int = 0
    errors: int = 0
    last_cycle_seconds: float = 0.0
    targets: int = 0


class NmsCollector(Collector):
    def __init__(self, *, detector: Detector, probes: ProbeStats, clock: Clock) -> None:
        self._detector = detector
        self._probes = probes
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        now = self._clock.now()
        fleet = GaugeMetricFamily("nms_ntus", "NTUs by detector state", labels=["state"])
        for status, count in self._detector.counts().items():
            fleet.add_metric([status.value], count)
        yield fleet

        up = GaugeMetricFamily(
            "nms_ntu_up", "1 if the NTU answers, 0 if not, absent if unknown", labels=["ntu"]
        )
        state = GaugeMetricFamily(
            "nms_ntu_state", "1 for the NTU's current detector state", labels=["ntu", "state"]
        )
        rtt = GaugeMetricFamily(
            "nms_ntu_rtt_seconds", "Average echo round-trip time of the last burst", labels=["ntu"]
        )
        loss = GaugeMetricFamily(
            "nms_ntu_loss_ratio", "Fraction of echoes lost in the last burst", labels=["ntu"]
        )
        jitter = GaugeMetricFamily(
            "nms_ntu_jitter_seconds", "Jitter of the last burst", labels=["ntu"]
        )
        age = GaugeMetricFamily(
            "nms_ntu_observation_age_seconds",
            "Time since the last probe result for the NTU",
            labels=["ntu"],
        )
        for ntu_id, tracked in self._detector.ntus.items():
            s = tracked.state
            state.add_metric([ntu_id, s.status.value], 1)
            if s.status in (Status.UP, Status.SUSPECT):
                up.add_metric([ntu_id], 1 if s.status == Status.UP else 0)
            elif s.status in (Status.DOWN, Status.RECOVERING):
                up.add_metric([ntu_id], 0)
            if s.last_observation_at is not None:
                age.add_metric([ntu_id], (now - s.last_observation_at).total_seconds())
            probe = tracked.last_probe
            if probe is not None:
                if probe.rtt_avg is not None:
                    rtt.add_metric([ntu_id], probe.rtt_avg)
                if probe.loss is not None:
                    loss.add_metric([ntu_id], probe.loss)
                if probe.jitter is not None:
                    jitter.add_metric([ntu_id], probe.jitter)
        yield from (up, state, rtt, loss, jitter, age)

        stats = self._detector.stats
        yield CounterMetricFamily(
            "nms_detector_observations", "Probe results processed", value=stats.observations
        )
        yield CounterMetricFamily(
            "nms_detector_cases_opened",
            "Incident cases opened by the detector",
            value=stats.cases_opened,
        )
        yield CounterMetricFamily(
            "nms_detector_cases_restored",
            "Incident cases solved on restoration",
            value=stats.cases_restored,
        )
        yield CounterMetricFamily(
            "nms_detector_case_errors",
            "Failed calls to the case service (retried)",
            value=stats.case_errors,
        )
        yield CounterMetricFamily(
            "nms_probe_cycles", "ICMP sweep cycles completed", value=self._probes.cycles
        )
        yield CounterMetricFamily(
            "nms_probe_cycle_overruns",
            "Sweep cycles that took longer than the interval",
            value=self._probes.overruns,
        )
        yield CounterMetricFamily(
            "nms_probe_errors", "Sweep cycles that failed", value=self._probes.errors
        )
        yield GaugeMetricFamily(
            "nms_probe_cycle_duration_seconds",
            "Duration of the last sweep cycle",
            value=self._probes.last_cycle_seconds,
        )
        yield GaugeMetricFamily(
            "nms_probe_targets", "Targets in the last sweep cycle", value=self._probes.targets
        )
