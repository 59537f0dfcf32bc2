"""The detector's metrics: per-NTU and fleet state, detector counters, probe loops.

``NmsCollector`` reads the detector's in-memory state at scrape time (never updated
from hot paths). Fleet aggregates (``nms_ntus`` by state, ``nms_ntus_with_open_case``,
``nms_ntus_icmp_filtered``, the detector's counters) are always exported. Per-NTU
series (label ``ntu``; ``nms_ntu_state`` is one series per NTU: only the current
state) are exported for the NTUs ``metrics.per_ntu`` selects:

* ``all``: every NTU: 8 series for an NTU probed by ICMP only, 15 with SNMP, one more
  during an outage (about 10 per NTU in a fleet where a third has SNMP);
* ``not_up``: only NTUs suspect, down, recovering or unreachable, or with an open
  P1/P2 (a degraded NTU is up); unknown NTUs are not (all are, at start-up);
* ``none``: no per-NTU series.

``nms_metrics_per_ntu_info{mode}`` says which. The per-NTU families are written as
text in one pass over the NTUs (``nms.noc.exposition.TextFamily``): at 100k NTUs a
scrape costs about 0.6 s of CPU instead of 4.7 s with one ``Sample`` per series
(``bench/metrics_scrape.py``). The probe loops' counters, where probes run in this
process, come from ``nms.noc.probe_metrics.ProbeCollector``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextvars import ContextVar
from datetime import datetime
from typing import Final, Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from nms.clock import Clock
from nms.detector.availability import Status
from nms.detector.engine import Detector
from nms.detector.tracked import Tracked
from nms.noc.exposition import TextFamily, escape_label, sample_value
from nms.noc.probe_metrics import (
    LoopCounters,
    ProbeCollector,
    ProbeStats,
    SnmpClientCounters,
    TrapCounters,
)

PerNtu = Literal["all", "not_up", "none"]
"""``metrics.per_ntu``: which NTUs get per-NTU series (fleet aggregates always)."""

#: How much each mode exports: a scrape may ask for a narrower mode, never a wider.
_WIDTH: Final[dict[PerNtu, int]] = {"all": 2, "not_up": 1, "none": 0}
_MODES: Final[dict[str, PerNtu]] = {mode: mode for mode in _WIDTH}

#: The mode a scrape asked for (``GET /metrics?per_ntu=...``), set by the route around
#: the render (the worker thread inherits the context).
SCRAPE_PER_NTU: ContextVar[PerNtu | None] = ContextVar("SCRAPE_PER_NTU", default=None)


def narrowed(configured: PerNtu, asked: PerNtu) -> PerNtu:
    """``asked`` if it exports no more than ``configured``, else ``configured``."""
    return asked if _WIDTH[asked] <= _WIDTH[configured] else configured


def parse_per_ntu(value: str | None) -> PerNtu | None:
    """The ``per_ntu`` query parameter of a scrape, or None if absent.

    Raises:
        ValueError: naming the allowed values.
    """
    if value is None:
        return None
    mode = _MODES.get(value)
    if mode is None:
        raise ValueError("per_ntu: must be one of all, not_up, none")
    return mode


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
        per_ntu: which NTUs get per-NTU series (``metrics.per_ntu``).
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
        per_ntu: PerNtu = "all",
    ) -> None:
        self._detector = detector
        self._per_ntu_mode: PerNtu = per_ntu
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
        # Per-NTU families are written as text in one pass (``TextFamily``), the rest
        # as ordinary families: a few dozen samples.
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

    def exported(self, tracked: Tracked) -> bool:
        """Whether the NTU has per-NTU series on the page being rendered."""
        return _selects(self.mode(), tracked)

    def mode(self) -> PerNtu:
        """The ``metrics.per_ntu`` mode of the page being rendered: the configured one,
        or the narrower one a scrape asked for (``?per_ntu=``, see ``narrowed``)."""
        asked = SCRAPE_PER_NTU.get()
        return self._per_ntu_mode if asked is None else narrowed(self._per_ntu_mode, asked)

    def _per_ntu(self) -> Iterator[Metric]:
        mode = self.mode()
        info = GaugeMetricFamily(
            "nms_metrics_per_ntu_info",
            "Always 1; the label is the metrics.per_ntu mode of this page: all, not_up "
            "(only NTUs not up or with an open incident) or none (no per-NTU series)",
            labels=["mode"],
        )
        info.add_metric([mode], 1)
        yield info
        if mode == "none":
            return
        yield from _per_ntu_families(self._detector.ntus, self._clock.now(), mode)

    def _detector_stats(self) -> Iterator[Metric]:
        stats = self._detector.stats
        yield GaugeMetricFamily(
            "nms_detector_leader",
            "1 if this detector is the active one (always 1 in embedded mode)",
            value=1 if self._leader() else 0,
        )
        newest = max(
            (
                t.state.last_observation_at
                for t in self._detector.ntus.values()
                if t.state.last_observation_at is not None
            ),
            default=None,
        )
        if newest is not None:
            yield GaugeMetricFamily(
                "nms_detector_freshest_observation_age_seconds",
                "Time since the newest probe result for any NTU (probes stale if large)",
                value=(self._clock.now() - newest).total_seconds(),
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


#: The per-NTU families: name, type, help. Their order is the page's.
_FAMILIES: Final = (
    ("nms_ntu_up", "gauge", "1 if the NTU answers, 0 if not, absent if unknown"),
    ("nms_ntu_state", "gauge", "Always 1; the label is the NTU's current detector state"),
    ("nms_ntu_rtt_seconds", "gauge", "Average echo round-trip time of the last burst"),
    ("nms_ntu_loss_ratio", "gauge", "Fraction of echoes lost in the last burst"),
    ("nms_ntu_jitter_seconds", "gauge", "Jitter of the last burst"),
    ("nms_ntu_observation_age_seconds", "gauge", "Time since the last probe result for the NTU"),
    (
        "nms_ntu_outage_seconds",
        "gauge",
        "Time since the first failed probe of the current (suspected) outage",
    ),
    (
        "nms_ntu_open_case",
        "gauge",
        "1 while the detector holds an open proactive incident for the NTU",
    ),
    (
        "nms_ntu_wan_oper_status",
        "gauge",
        "ifOperStatus of the WAN interface (1 up, 2 down, 7 lowerLayerDown, ...)",
    ),
    (
        "nms_ntu_wan_admin_status",
        "gauge",
        "ifAdminStatus of the WAN interface (1 up, 2 down, 3 testing)",
    ),
    (
        "nms_ntu_wan_receive_bytes_per_second",
        "gauge",
        "WAN interface inbound throughput between the last two SNMP polls",
    ),
    (
        "nms_ntu_wan_transmit_bytes_per_second",
        "gauge",
        "WAN interface outbound throughput between the last two SNMP polls",
    ),
    (
        "nms_ntu_wan_errors_per_second",
        "gauge",
        "WAN interface in errors + out errors + in discards per second",
    ),
    ("nms_ntu_icmp_filtered", "gauge", "1 if the NTU answers SNMP but not ICMP"),
    ("nms_ntu_reboots", "counter", "Reboots seen by SNMP (sysUpTime going back)"),
)

_UP_OR_NOT = {
    Status.UP: " 1.0\n",
    Status.SUSPECT: " 0.0\n",
    Status.DOWN: " 0.0\n",
    Status.RECOVERING: " 0.0\n",
    Status.UNREACHABLE: " 0.0\n",
}


def _selects(mode: PerNtu, tracked: Tracked) -> bool:
    if mode == "all":
        return True
    if mode == "none":
        return False
    status = tracked.state.status
    # not_up: unknown NTUs stay out (every NTU is unknown at start-up: exporting
    # them would create and drop a whole fleet of series at every start).
    return (status is not Status.UP and status is not Status.UNKNOWN) or (
        tracked.case_ref is not None or tracked.degraded_case_ref is not None
    )


def _per_ntu_families(
    ntus: dict[str, Tracked], now: datetime, mode: PerNtu
) -> Iterator[TextFamily]:
    """The per-NTU families, written as text in one pass over the NTUs."""
    up: list[str] = []
    state: list[str] = []
    rtt: list[str] = []
    loss: list[str] = []
    jitter: list[str] = []
    age: list[str] = []
    outage: list[str] = []
    open_case: list[str] = []
    oper: list[str] = []
    admin: list[str] = []
    rx: list[str] = []
    tx: list[str] = []
    errors: list[str] = []
    filtered: list[str] = []
    reboots: list[str] = []
    num = sample_value
    for ntu_id, tracked in ntus.items():
        s = tracked.state
        status = s.status
        if mode != "all" and not _selects(mode, tracked):
            continue
        ntu = escape_label(ntu_id)
        key = f'{{ntu="{ntu}"}}'
        verdict = _UP_OR_NOT.get(status)
        if verdict is not None:
            up.append(f"nms_ntu_up{key}{verdict}")
        state.append(f'nms_ntu_state{{ntu="{ntu}",state="{status.value}"}} 1.0\n')
        if s.last_observation_at is not None:
            age.append(
                f"nms_ntu_observation_age_seconds{key} "
                f"{num((now - s.last_observation_at).total_seconds())}\n"
            )
        if s.outage_start is not None:
            seconds = max((now - s.outage_start).total_seconds(), 0.0)
            outage.append(f"nms_ntu_outage_seconds{key} {num(seconds)}\n")
        p1 = "1.0" if tracked.case_ref else "0.0"
        p2 = "1.0" if tracked.degraded_case_ref else "0.0"
        open_case.append(
            f'nms_ntu_open_case{{ntu="{ntu}",priority="P1"}} {p1}\n'
            f'nms_ntu_open_case{{ntu="{ntu}",priority="P2"}} {p2}\n'
        )
        probe = tracked.last_probe
        if probe is not None:
            if probe.rtt_avg is not None:
                rtt.append(f"nms_ntu_rtt_seconds{key} {num(probe.rtt_avg)}\n")
            if probe.loss is not None:
                loss.append(f"nms_ntu_loss_ratio{key} {num(probe.loss)}\n")
            if probe.jitter is not None:
                jitter.append(f"nms_ntu_jitter_seconds{key} {num(probe.jitter)}\n")
        view = tracked.snmp
        if view.wan_oper_status is not None:
            oper.append(f"nms_ntu_wan_oper_status{key} {num(view.wan_oper_status)}\n")
        if view.wan_admin_status is not None:
            admin.append(f"nms_ntu_wan_admin_status{key} {num(view.wan_admin_status)}\n")
        if view.in_bps is not None:
            rx.append(f"nms_ntu_wan_receive_bytes_per_second{key} {num(view.in_bps / 8)}\n")
        if view.out_bps is not None:
            tx.append(f"nms_ntu_wan_transmit_bytes_per_second{key} {num(view.out_bps / 8)}\n")
        if view.error_rate is not None:
            errors.append(f"nms_ntu_wan_errors_per_second{key} {num(view.error_rate)}\n")
        if tracked.spec.snmp is not None:
            filtered.append(
                f"nms_ntu_icmp_filtered{key} {'1.0' if view.icmp_filtered else '0.0'}\n"
            )
            reboots.append(f"nms_ntu_reboots_total{key} {num(view.reboots)}\n")
    lines = (
        up, state, rtt, loss, jitter, age, outage, open_case, oper, admin, rx, tx, errors,
        filtered, reboots,
    )  # fmt: skip
    for (name, kind, doc), family in zip(_FAMILIES, lines, strict=True):
        yield TextFamily(name, doc, kind, family)
