"""Prometheus metrics of the probe loops: cycles, overruns, errors, SNMP client and traps.

Exported by ``nms run`` (through ``NmsCollector``) and by each ``nms probe`` worker.
Labels: ``probe`` (icmp, snmp) and ``kind`` (fixed counter names); a few dozen series.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


@dataclass(slots=True)
class ProbeStats:
    """Counters a probe loop updates; read by the collector."""

    cycles: int = 0
    overruns: int = 0
    errors: int = 0
    last_cycle_seconds: float = 0.0
    targets: int = 0
    #: When the last cycle ended (aware UTC; the NOC board's "last seen").
    last_cycle_at: datetime | None = None


class LoopCounters(Protocol):
    """What the collector reads from a probe loop that keeps only counts (SnmpLoop)."""

    @property
    def cycles(self) -> int: ...

    @property
    def errors(self) -> int: ...


class SnmpClientCounters(Protocol):
    """``probes.snmp.client.ClientStats``."""

    requests: int
    retransmissions: int
    responses: int
    malformed: int
    unmatched: int
    timeouts: int
    unreachable: int


class TrapCounters(Protocol):
    """``probes.snmp.traps.TrapStats``."""

    received: int
    unknown_source: int
    bad_community: int
    malformed: int


_SNMP_CLIENT_KINDS = (
    "requests", "retransmissions", "responses", "malformed", "unmatched", "timeouts",
    "unreachable",
)  # fmt: skip
_TRAP_KINDS = ("received", "unknown_source", "bad_community", "malformed")


class ProbeCollector(Collector):
    """The ICMP loop's ``ProbeStats`` and, once attached, the SNMP loop, client and traps."""

    def __init__(
        self,
        probes: ProbeStats,
        *,
        snmp: LoopCounters | ProbeStats | None = None,
        snmp_client: SnmpClientCounters | None = None,
        traps: TrapCounters | None = None,
    ) -> None:
        self._probes = probes
        self.attach_snmp(snmp, snmp_client, traps)

    def attach_snmp(
        self,
        loop: LoopCounters | ProbeStats | None,
        client: SnmpClientCounters | None = None,
        traps: TrapCounters | None = None,
    ) -> None:
        """Export the SNMP loop's (and client's, trap listener's) counters from now on."""
        self._snmp = loop
        self._snmp_client = client
        self._traps = traps

    def collect(self) -> Iterator[Metric]:
        probe = ["probe"]
        cycles = CounterMetricFamily("nms_probe_cycles", "Probe cycles completed", labels=probe)
        overruns = CounterMetricFamily(
            "nms_probe_cycle_overruns", "Cycles that took longer than the interval", labels=probe
        )
        errors = CounterMetricFamily("nms_probe_errors", "Probe cycles that failed", labels=probe)
        duration = GaugeMetricFamily(
            "nms_probe_cycle_duration_seconds", "Duration of the last cycle", labels=probe
        )
        targets = GaugeMetricFamily("nms_probe_targets", "Targets in the last cycle", labels=probe)
        loops: list[tuple[str, LoopCounters | ProbeStats]] = [("icmp", self._probes)]
        if self._snmp is not None:
            loops.append(("snmp", self._snmp))
        for name, loop in loops:
            cycles.add_metric([name], loop.cycles)
            errors.add_metric([name], loop.errors)
            if isinstance(loop, ProbeStats):
                overruns.add_metric([name], loop.overruns)
                duration.add_metric([name], loop.last_cycle_seconds)
                targets.add_metric([name], loop.targets)
        yield from (cycles, overruns, errors, duration, targets)
        if self._snmp_client is not None:
            family = CounterMetricFamily(
                "nms_snmp_client", "SNMP client events by kind", labels=["kind"]
            )
            for kind in _SNMP_CLIENT_KINDS:
                family.add_metric([kind], getattr(self._snmp_client, kind))
            yield family
        if self._traps is not None:
            family = CounterMetricFamily(
                "nms_snmp_traps", "SNMP traps by what became of them", labels=["kind"]
            )
            for kind in _TRAP_KINDS:
                family.add_metric([kind], getattr(self._traps, kind))
            yield family
