"""Per-NTU families written as text: the same page as before, the modes, escaping.

The oracle is the collector as it was (``reference_families``, Metric objects
formatted by ``prometheus_client.generate_latest``): the text renderer must write
the same bytes for the same fleet, and the page must parse.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from bench.metrics_scrape import synthetic_detector
from nms.clock import FakeClock
from nms.detector.availability import NtuState, Status
from nms.detector.engine import Detector
from nms.detector.tracked import Degraded, Tracked
from nms.inventory.model import NtuSpec
from nms.noc.exposition import render
from nms.noc.ntu_metrics import (
    SCRAPE_PER_NTU,
    NmsCollector,
    PerNtu,
    _per_ntu_families,
    narrowed,
    parse_per_ntu,
)
from nms.noc.probe_metrics import ProbeStats


def reference_families(ntus: dict[str, Tracked], now: datetime) -> Iterator[Metric]:
    """The per-NTU families as NmsCollector built them before they were text (the oracle)."""
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
    for ntu_id, tracked in ntus.items():
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


class Fixed(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


CLOCK = FakeClock()
NOT_UP = {Status.SUSPECT, Status.DOWN, Status.RECOVERING, Status.UNREACHABLE}


@pytest.fixture(scope="module")
def detector() -> Detector:
    """300 NTUs of every kind (see bench/metrics_scrape.py), a few with odd values."""
    detector = synthetic_detector(300, CLOCK)
    first = detector.ntus["ntu-000003"]  # SNMP, suspect
    first.signals = type(first.signals)(
        view=type(first.snmp)(in_bps=8e9, out_bps=12_345_678.9, error_rate=0.25, reboots=2_000_000)
    )
    return detector


def registry_of(families: Iterator[Metric]) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(Fixed(list(families)))
    return registry


def test_the_text_is_the_old_page_byte_for_byte(detector: Detector):
    now = CLOCK.now()
    old = generate_latest(registry_of(reference_families(detector.ntus, now)))
    new = registry_of(_per_ntu_families(detector.ntus, now, "all"))
    assert render(new) == old
    # Other readers of the registry get the same samples (parsed back from the lines).
    assert generate_latest(new) == old


def test_the_page_parses_and_every_value_agrees(detector: Detector):
    now = CLOCK.now()
    page = render(registry_of(_per_ntu_families(detector.ntus, now, "all"))).decode()
    parsed = {f.name: f for f in text_string_to_metric_families(page)}
    reference = {f.name: f for f in reference_families(detector.ntus, now)}
    assert parsed.keys() == reference.keys()
    for name, family in reference.items():
        assert parsed[name].type == family.type
        assert parsed[name].documentation == family.documentation
        assert parsed[name].samples == family.samples, name
    assert sum(len(f.samples) for f in parsed.values()) == sum(
        1 for line in page.splitlines() if not line.startswith("#")
    )


def page_of(detector: Detector, mode: PerNtu) -> dict[str, Metric]:
    registry = CollectorRegistry()
    registry.register(
        NmsCollector(detector=detector, probes=ProbeStats(), clock=CLOCK, per_ntu=mode)
    )
    return {f.name: f for f in text_string_to_metric_families(render(registry).decode())}


FLEET = {
    "nms_ntus",
    "nms_ntus_with_open_case",
    "nms_ntus_icmp_filtered",
    "nms_detector_leader",
    "nms_detector_freshest_observation_age_seconds",
    "nms_detector_observations",
    "nms_probe_cycles",
    "nms_metrics_per_ntu_info",
}


@pytest.mark.parametrize("mode", ["all", "not_up", "none"])
def test_each_mode_exports_the_documented_ntus(detector: Detector, mode: PerNtu):
    page = page_of(detector, mode)
    per_ntu = [f for name, f in page.items() if name.startswith("nms_ntu_")]
    with_series = {s.labels["ntu"] for f in per_ntu for s in f.samples}
    expected = {
        "all": set(detector.ntus),
        "none": set(),
        "not_up": {
            ntu
            for ntu, t in detector.ntus.items()
            if t.state.status in NOT_UP or t.case_ref or t.degraded_case_ref
        },
    }[mode]
    assert with_series == expected
    assert page.keys() >= FLEET  # fleet aggregates in every mode
    assert [s.labels for s in page["nms_metrics_per_ntu_info"].samples] == [{"mode": mode}]
    # An exported NTU has all of its series, the same as in "all".
    everything = page_of(detector, "all")
    for name, family in page.items():
        if name.startswith("nms_ntu_"):
            kept = [s for s in everything[name].samples if s.labels["ntu"] in expected]
            assert family.samples == kept, name
    # The fleet counts do not depend on the mode.
    assert page["nms_ntus"].samples == everything["nms_ntus"].samples
    if mode == "not_up":  # the mix: 7 % not up or with a case (unknown is not)
        assert len(expected) == 21
        assert not any(detector.ntus[n].state.status == Status.UNKNOWN for n in expected)
        assert any(detector.ntus[n].state.status == Status.UP for n in expected)  # a P2


def test_series_per_ntu_as_documented(detector: Detector):
    page = render(registry_of(_per_ntu_families(detector.ntus, CLOCK.now(), "all"))).decode()

    def series(ntu: str) -> int:
        return sum(1 for line in page.splitlines() if f'ntu="{ntu}"' in line)

    # README "Metrics at scale": 8 for an ICMP-only NTU, 15 with SNMP, +1 in an outage.
    assert series("ntu-000011") == 8  # up, ICMP only
    assert series("ntu-000012") == 15  # up, SNMP
    assert series("ntu-000000") == 16  # down, SNMP
    assert series("ntu-000004") == 3  # unknown: state and open_case P1/P2 only


def test_a_scrape_may_narrow_the_mode_never_widen_it(detector: Detector):
    assert narrowed("all", "none") == "none"
    assert narrowed("all", "not_up") == "not_up"
    assert narrowed("not_up", "all") == "not_up"
    assert narrowed("none", "all") == "none"
    assert parse_per_ntu(None) is None
    assert parse_per_ntu("not_up") == "not_up"
    with pytest.raises(ValueError, match="all, not_up, none"):
        parse_per_ntu("some")
    collector = NmsCollector(detector=detector, probes=None, clock=CLOCK, per_ntu="not_up")
    token = SCRAPE_PER_NTU.set("all")
    try:
        assert collector.mode() == "not_up"
        SCRAPE_PER_NTU.set("none")
        assert collector.mode() == "none"
    finally:
        SCRAPE_PER_NTU.reset(token)
    assert collector.mode() == "not_up"


@pytest.mark.parametrize(
    "ntu", ['quote"d', "back\\slash", "new\nline", 'all\\"of\nthem\\', "ünï ✓"]
)
def test_label_values_are_escaped(ntu: str):
    detector = synthetic_detector(1, CLOCK)
    tracked = detector.ntus.pop("ntu-000000")
    tracked.spec = NtuSpec.model_construct(**{**dict(tracked.spec), "id": ntu})
    tracked.degraded = Degraded(ref="D-1")
    tracked.state = NtuState(
        status=Status.DOWN, since=CLOCK.now(), outage_start=CLOCK.now() - timedelta(seconds=9)
    )
    detector.ntus[ntu] = tracked
    now: datetime = CLOCK.now()
    page = render(registry_of(_per_ntu_families(detector.ntus, now, "not_up")))
    assert page == generate_latest(registry_of(reference_families(detector.ntus, now)))
    labels = {
        s.labels["ntu"] for f in text_string_to_metric_families(page.decode()) for s in f.samples
    }
    assert labels == {ntu}


async def test_the_detector_status_page_narrows_too(detector: Detector):
    # ``nms detector`` serves /metrics from nms.app.process.status_app.
    from httpx import ASGITransport, AsyncClient

    from nms.app.process import status_app

    registry = CollectorRegistry()
    registry.register(NmsCollector(detector=detector, probes=None, clock=CLOCK, per_ntu="all"))
    app = status_app(health=dict, registry=lambda: registry)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        full = (await client.get("/metrics")).text
        fleet_only = (await client.get("/metrics?per_ntu=none")).text
        bad = await client.get("/metrics?per_ntu=every")
    assert 'nms_ntu_state{ntu="ntu-000011",state="up"} 1.0' in full
    assert 'nms_metrics_per_ntu_info{mode="none"} 1.0' in fleet_only
    assert "nms_ntu_" not in fleet_only  # no per-NTU family at all (nms_ntus is fleet)
    assert 'nms_ntus{state="up"} 279.0' in fleet_only
    assert bad.status_code == 400
