"""The collectors, on a fresh registry each: detector state and case figures.

The detector runs on a fake clock with the real case service and database (SQLite
and PostgreSQL); every figure is read back with ``get_sample_value``.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from caseapi.app import build_services
from caseapi.cases.models import CaseNotification
from caseapi.cases.ticker import CaseTicker
from caseapi.incidents import IncidentOpen, ntu_degraded_key
from nms.bus.batch import PingBatch
from nms.clock import FakeClock
from nms.detector.availability import Rules
from nms.detector.engine import Detector
from nms.detector.settings import DegradedSettings
from nms.inventory.loader import parse_inventory
from nms.inventory.sync import sync_inventory
from nms.noc.case_metrics import CaseStatsCollector
from nms.noc.case_stats import CaseStats
from nms.noc.metrics import build_metrics, proxied_metrics_router
from nms.noc.ntu_metrics import NmsCollector
from nms.noc.probe_metrics import ProbeStats
from probes.observation import PingResult
from tests.caseapi.conftest import Database

INVENTORY = parse_inventory(
    """\
customers:
  - {id: acme, name: ACME}
ntus:
  - {id: n1, customer: acme, service_id: S1, site: HQ, address: 192.0.2.1}
  - {id: n2, customer: acme, service_id: S2, address: 192.0.2.2}
  - {id: n3, customer: acme, address: 192.0.2.3}
""",
    source="inv.yaml",
    fmt="yaml",
)
RULES = Rules(down_after=timedelta(minutes=10), restore_after=2, stale_after=timedelta(minutes=2))
INTERVAL = timedelta(seconds=30)


def ping(clock: FakeClock, ntu: str, ok: bool) -> PingResult:
    return PingResult(
        key=ntu,
        address=ipaddress.ip_address("192.0.2.1"),
        started_at=clock.now(),
        sent=5,
        received=5 if ok else 0,
        rtts=(0.002, 0.004, 0.002, 0.004, 0.003) if ok else (),
    )


class World:
    def __init__(self, db: Database) -> None:
        self.clock = FakeClock()
        self.db = db
        self.service = build_services(sessionmaker=db.sessionmaker, clock=self.clock)
        self.detector = Detector(
            rules=RULES,
            degraded=DegradedSettings(),
            clock=self.clock,
            sink=self.service.incidents,
            sessionmaker=db.sessionmaker,
        )
        self.probes = ProbeStats(cycles=7, overruns=1, errors=2, last_cycle_seconds=1.5, targets=3)
        self.stats = CaseStats(
            sessionmaker=db.sessionmaker,
            clock=self.clock,
            ttl=timedelta(seconds=10),
            at_risk_within=timedelta(minutes=15),
        )
        self.registry = CollectorRegistry()
        self.registry.register(
            NmsCollector(detector=self.detector, probes=self.probes, clock=self.clock)
        )
        self.registry.register(
            CaseStatsCollector(stats=self.stats, clock=self.clock, ntus=lambda: self.detector.ntus)
        )

    async def cycle(self, down: set[str]) -> None:
        await self.detector.observe(
            PingBatch(tuple(ping(self.clock, n, n not in down) for n in self.detector.ntus))
        )
        self.clock.advance(INTERVAL)
        await self.detector.tick()

    def value(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)


@pytest.fixture
async def world(database: Database) -> World:
    await sync_inventory(database.sessionmaker, INVENTORY)
    w = World(database)
    await w.detector.load(INVENTORY)
    return w


async def test_per_ntu_and_fleet_gauges_follow_the_detector(world: World):
    assert world.value("nms_ntus", state="unknown") == 3
    assert world.value("nms_ntu_up", ntu="n1") is None  # unknown: no verdict yet
    await world.cycle(set())
    assert world.value("nms_ntus", state="up") == 3
    assert world.value("nms_ntu_up", ntu="n1") == 1
    assert world.value("nms_ntu_state", ntu="n1", state="up") == 1
    assert world.value("nms_ntu_state", ntu="n1", state="down") is None  # one series per NTU
    assert world.value("nms_ntu_rtt_seconds", ntu="n1") == pytest.approx(0.003)
    assert world.value("nms_ntu_loss_ratio", ntu="n1") == 0
    assert world.value("nms_ntu_jitter_seconds", ntu="n1") is not None
    assert world.value("nms_ntu_observation_age_seconds", ntu="n1") == INTERVAL.total_seconds()
    assert world.value("nms_detector_freshest_observation_age_seconds") == 30
    assert world.value("nms_detector_leader") == 1
    assert world.value("nms_ntu_open_case", ntu="n1", priority="P1") == 0
    # No SNMP section in the inventory: no SNMP series at all.
    assert world.value("nms_ntu_wan_oper_status", ntu="n1") is None
    assert world.value("nms_ntu_reboots_total", ntu="n1") is None

    for _ in range(22):  # 11 minutes of n2 failing
        await world.cycle({"n2"})
    assert world.value("nms_ntus", state="down") == 1
    assert world.value("nms_ntu_up", ntu="n2") == 0
    assert world.value("nms_ntu_loss_ratio", ntu="n2") == 1
    assert world.value("nms_ntu_open_case", ntu="n2", priority="P1") == 1
    assert world.value("nms_ntus_with_open_case", priority="P1") == 1
    assert world.value("nms_ntu_outage_seconds", ntu="n2") == 22 * 30
    assert world.value("nms_ntu_outage_seconds", ntu="n1") is None
    assert world.value("nms_detector_cases_opened_total", priority="P1") == 1
    assert world.value("nms_detector_cases_opened_total", priority="P2") == 0


async def test_probe_counters_carry_the_probe_label(world: World):
    assert world.value("nms_probe_cycles_total", probe="icmp") == 7
    assert world.value("nms_probe_cycle_overruns_total", probe="icmp") == 1
    assert world.value("nms_probe_errors_total", probe="icmp") == 2
    assert world.value("nms_probe_cycle_duration_seconds", probe="icmp") == 1.5
    assert world.value("nms_probe_targets", probe="icmp") == 3
    assert world.value("nms_probe_cycles_total", probe="snmp") is None


class _SnmpLoop:
    cycles = 4
    errors = 1


async def test_snmp_loop_counters_are_exported_when_given(world: World):
    registry = CollectorRegistry()
    registry.register(
        NmsCollector(
            detector=world.detector, probes=world.probes, clock=world.clock, snmp=_SnmpLoop()
        )
    )
    assert registry.get_sample_value("nms_probe_cycles_total", {"probe": "snmp"}) == 4
    assert registry.get_sample_value("nms_probe_errors_total", {"probe": "snmp"}) == 1


async def test_case_figures_come_from_the_database(world: World):
    # Nothing before the first refresh: the page says so by the absent age.
    assert world.value("nms_case_stats_age_seconds") is None
    await world.cycle(set())
    for _ in range(22):
        await world.cycle({"n2"})  # P1 on n2, detected 10 min after the first failure
    p2_start = world.clock.now() - timedelta(minutes=5)
    await world.service.incidents.open_incident(
        IncidentOpen(
            dedup_key=ntu_degraded_key("n3"),
            priority="P2",
            ntu_id="n3",
            customer_id="acme",
            service_id=None,
            site=None,
            outage_start=p2_start,
            detected_at=world.clock.now(),
            summary="n3 degraded",
        )
    )
    async with world.db.sessionmaker() as session:
        session.add(CaseNotification(case_id=1, kind="case_auto_closed", created_at=p2_start))
        await session.commit()

    await world.stats.maybe_refresh()
    assert world.value("nms_case_stats_age_seconds") == 0
    assert world.value("nms_cases_open", priority="P1", status="new") == 1
    assert world.value("nms_cases_open", priority="P2", status="new") == 1
    assert world.value("nms_cases_open", priority="P1", status="closed") is None
    # First response due in 30 min: inside "at risk" (15 min) only later.
    assert world.value("nms_cases_sla_at_risk", priority="P1", sla="first_response") == 0
    assert world.value("nms_cases_unassigned", priority="P1") == 1
    assert world.value("nms_notifications_pending") == 1
    assert world.value("nms_notifications_oldest_pending_age_seconds") == 300
    assert world.value("nms_ntu_open_case_age_seconds", ntu="n2", priority="P1") is not None
    assert world.value("nms_ntu_open_case_age_seconds", ntu="n3", priority="P2") == 0
    # Detection latency: P1 about down_after after the first failure, P2 5 min.
    assert world.value("nms_detection_latency_seconds_count", priority="P1") == 1
    assert world.value("nms_detection_latency_seconds_bucket", priority="P1", le="300.0") == 0
    assert world.value("nms_detection_latency_seconds_bucket", priority="P1", le="600.0") == 1
    assert world.value("nms_detection_latency_seconds_bucket", priority="P2", le="300.0") == 1
    assert world.value("nms_detection_latency_seconds_sum", priority="P2") == 300

    # Within the TTL the snapshot is served as it is.
    world.clock.advance(timedelta(minutes=20))
    assert world.value("nms_case_stats_age_seconds") == 1200
    await world.stats.maybe_refresh()
    assert world.value("nms_cases_sla_at_risk", priority="P1", sla="first_response") == 1
    assert world.value("nms_cases_oldest_open_age_seconds", priority="P2") == 1200

    # Past the first-response deadline the ticker marks the breach and escalates.
    world.clock.advance(timedelta(minutes=15))
    await CaseTicker(sessionmaker=world.db.sessionmaker, clock=world.clock).run_once()
    await world.stats.maybe_refresh()
    assert world.value("nms_cases_sla_breached", priority="P1", sla="first_response") == 1
    assert world.value("nms_cases_sla_at_risk", priority="P1", sla="first_response") == 0
    assert (
        world.value(
            "nms_cases_sla_outcomes", priority="P1", sla="first_response", outcome="breached"
        )
        == 1
    )
    assert world.value("nms_cases_escalation_level", priority="P1", level="L2") == 1
    assert world.value("nms_cases_escalation_level", priority="P1", level="L1") == 0
    assert world.value("nms_case_escalations_total") == 2  # P1 and P2 both breached

    # Restoration: solved, inside the monitoring window.
    for _ in range(3):
        await world.cycle(set())
    await world.stats.maybe_refresh()
    assert world.value("nms_cases_monitoring", priority="P1") == 1
    assert world.value("nms_cases_open", priority="P1", status="solved") == 1
    assert world.value("nms_ntu_open_case", ntu="n2", priority="P1") == 0
    # A second refresh does not count the same cases and escalations twice.
    world.clock.advance(timedelta(minutes=1))
    await world.stats.maybe_refresh()
    assert world.value("nms_detection_latency_seconds_count", priority="P1") == 1
    assert world.value("nms_case_escalations_total") == 2


async def test_a_failed_refresh_keeps_the_last_snapshot_and_counts(world: World):
    await world.stats.maybe_refresh()
    await world.db.engine.dispose()
    broken = CaseStats(sessionmaker=_Broken(), clock=world.clock)  # type: ignore[arg-type]
    await broken.maybe_refresh()
    assert broken.errors == 1
    assert broken.snapshot is None
    registry = CollectorRegistry()
    registry.register(CaseStatsCollector(stats=broken, clock=world.clock))
    assert registry.get_sample_value("nms_case_stats_refresh_errors_total") == 1
    assert registry.get_sample_value("nms_cases_open", {"priority": "P1", "status": "new"}) is None


class _Broken:
    def __call__(self) -> object:
        raise OSError("database unreachable")


async def test_metrics_route_refreshes_then_renders(world: World):
    from fastapi import FastAPI
    from httpx import ASGITransport, AsyncClient

    metrics = build_metrics(
        detector=world.detector,
        probes=world.probes,
        clock=world.clock,
        sessionmaker=world.db.sessionmaker,
    )
    metrics.collector.attach_snmp(_SnmpLoop())
    app = FastAPI()
    app.include_router(metrics.router())
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        page = (await client.get("/metrics")).text
    assert 'nms_cases_open{priority="P1",status="new"} 0.0' in page
    assert 'nms_ntus{state="unknown"} 3.0' in page
    assert "nms_case_stats_age_seconds 0.0" in page
    assert 'nms_probe_cycles_total{probe="snmp"} 4.0' in page
    # The process's own CPU, memory and garbage collections (nms.noc.process_metrics).
    assert 'nms_gc_seconds_total{generation="2"}' in page
    assert "process_cpu_seconds_total " in page
    assert "process_resident_memory_bytes " in page


def test_case_stats_rejects_bad_settings():
    with pytest.raises(ValueError, match="buckets"):
        CaseStats(sessionmaker=None, clock=FakeClock(), buckets=(5, 1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        CaseStats(sessionmaker=None, clock=FakeClock(), timeout=timedelta(0))  # type: ignore[arg-type]


async def test_the_route_serves_the_configured_mode_or_a_narrower_one(world: World):
    from fastapi import FastAPI
    from httpx import ASGITransport, AsyncClient
    from prometheus_client.parser import text_string_to_metric_families

    await world.cycle(set())
    for _ in range(22):
        await world.cycle({"n2"})  # n2 down with a P1: the only NTU not up
    metrics = build_metrics(
        detector=world.detector,
        probes=world.probes,
        clock=world.clock,
        sessionmaker=world.db.sessionmaker,
        per_ntu="not_up",
    )
    app = FastAPI()
    app.include_router(metrics.router())

    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:

        async def ntus_on_page(query: str) -> tuple[str, set[str], set[str]]:
            response = await client.get("/metrics" + query)
            assert response.status_code == 200, response.text
            families = list(text_string_to_metric_families(response.text))
            (mode,) = {s.labels["mode"] for f in families for s in f.samples if "mode" in s.labels}
            ntus = {s.labels["ntu"] for f in families for s in f.samples if "ntu" in s.labels}
            names = {f.name for f in families if f.samples}
            return mode, ntus, names

        mode, ntus, names = await ntus_on_page("")
        assert (mode, ntus) == ("not_up", {"n2"})
        assert "nms_ntu_open_case_age_seconds" in names  # n2's P1, from the case figures
        assert await ntus_on_page("?per_ntu=all") == (mode, ntus, names)  # never wider
        mode, ntus, names = await ntus_on_page("?per_ntu=none")
        assert (mode, ntus) == ("none", set())
        assert {"nms_ntus", "nms_cases_open", "nms_ntus_with_open_case"} <= names
        bad = await client.get("/metrics?per_ntu=some")
        assert bad.status_code == 400
        assert "per_ntu: must be one of all, not_up, none" in bad.text


async def test_a_proxied_scrape_without_its_process_is_503_naming_it(tmp_path: Path):
    # An nms run API worker whose nms run is gone (or not answering yet).
    from fastapi import FastAPI
    from httpx import ASGITransport, AsyncClient

    app = FastAPI()
    app.include_router(proxied_metrics_router(tmp_path / "metrics.sock"))
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/metrics")
    assert response.status_code == 503
    assert "nms run's metrics did not answer" in response.text
