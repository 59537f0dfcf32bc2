"""Dashboards and rule files without a live system: structure, promtool, metric names.

The metric names are compared against a scrape of our collectors, filled with enough
state (an SNMP NTU, an open case) that every family we export has samples.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from dataclasses import replace
from datetime import timedelta

import pytest
import yaml
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from caseapi.app import RateLimitStats, build_services
from nms.bus.batch import PingBatch
from nms.bus.mqtt import BusStats
from nms.bus.wire import Heartbeat
from nms.clock import FakeClock
from nms.detector.availability import Rules
from nms.detector.engine import Detector
from nms.detector.migrate import migrate_detector_state
from nms.detector.settings import DegradedSettings
from nms.detector.store import LastProbe
from nms.inventory.loader import parse_inventory
from nms.inventory.sync import sync_inventory
from nms.noc.cluster_metrics import DELAY_BUCKETS, BusCollector, ShardMonitor
from nms.noc.metrics import build_metrics
from nms.noc.probe_metrics import ProbeStats
from probes.observation import PingResult
from tests.caseapi.conftest import (  # noqa: F401 - fixtures
    Database,
    database,
    pg_server,
    sqlite_template,
)
from tests.conftest import require
from tests.dashboards.promql import (
    GRAFANA,
    PROMETHEUS,
    dashboard_queries,
    dashboards,
    metric_names,
    panels,
    rule_queries,
    rules,
    substitute,
)
from tests.nms.detector.conftest import drop_detector_schema

PROMTOOL = shutil.which("promtool")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    require(PROMTOOL is not None, "needs promtool (Debian package prometheus)")
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, "check", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_accepts_the_config_and_rules():
    config = promtool("config", str(PROMETHEUS / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr
    files = sorted(str(p) for p in (PROMETHEUS / "rules").glob("*.yml"))
    assert files
    checked = promtool("rules", *files)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_self_monitoring_alerts_exist():
    alerts = {r["alert"] for r in rules() if "alert" in r}
    assert {
        "NmsProbesStale",
        "NmsProbeCycleOverruns",
        "NmsNotificationBacklog",
        "NmsDetectorNotLeading",
    } <= alerts
    for rule in rules():
        if "alert" in rule:
            assert rule["annotations"]["summary"], rule["alert"]
            assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_each_dashboard_is_provisionable(name: str):
    board = dashboards()[name]
    assert board["uid"] == name.removesuffix(".json")
    assert len(board["uid"]) <= 40
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels(board):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        targets = panel.get("targets", [])
        assert targets, f"{name}: panel {panel['title']!r} has no query"
        for target in targets:
            assert target["expr"].strip(), f"{name}: panel {panel['title']!r} has an empty query"
            assert target["datasource"]["uid"] == "${datasource}"
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids))


def test_uids_are_unique_and_provisioning_files_point_at_them():
    uids = [board["uid"] for board in dashboards().values()]
    assert len(uids) == len(set(uids)) == 3
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/nms.yaml").read_text())
    assert provider["providers"][0]["type"] == "file"
    source = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yaml").read_text())
    assert source["datasources"][0]["type"] == "prometheus"


def test_every_variable_is_substituted():
    for query in [*dashboard_queries(), *rule_queries()]:
        expr = substitute(query.expr, {"ntu": "ntu-000"})
        assert "$" not in expr, query.where


INVENTORY = parse_inventory(
    """\
customers:
  - {id: acme, name: ACME}
ntus:
  - {id: n1, customer: acme, address: 192.0.2.1, snmp: {community: public}}
""",
    source="inv.yaml",
    fmt="yaml",
)


async def exported_names(db: Database) -> set[str]:
    """Every sample name our collectors export, with state in every family."""
    clock = FakeClock()
    await sync_inventory(db.sessionmaker, INVENTORY)
    service = build_services(sessionmaker=db.sessionmaker, clock=clock).incidents
    detector = Detector(
        rules=Rules(
            down_after=timedelta(seconds=60), restore_after=1, stale_after=timedelta(hours=1)
        ),
        degraded=DegradedSettings(),
        clock=clock,
        sink=service,
        sessionmaker=db.sessionmaker,
    )
    await detector.load(INVENTORY)
    for ok in (True, False, False, False, False):
        await detector.observe(
            PingBatch(
                results=(
                    PingResult(
                        key="n1",
                        address=ipaddress.ip_address("192.0.2.1"),
                        started_at=clock.now(),
                        sent=2,
                        received=2 if ok else 0,
                        rtts=(0.001, 0.002) if ok else (),
                    ),
                )
            )
        )
        clock.advance(30)
    # The last burst failed (no RTT): give it figures, as an answering NTU has.
    detector.ntus["n1"].last_probe = LastProbe(rtt_avg=0.001, loss=0.5, jitter=0.0)
    tracked = detector.ntus["n1"]
    view = replace(
        tracked.signals.view,
        wan_oper_status=1,
        wan_admin_status=1,
        in_bps=0.0,
        out_bps=0.0,
        error_rate=0.0,
    )
    tracked.signals = replace(tracked.signals, view=view)
    metrics = build_metrics(
        detector=detector,
        probes=ProbeStats(),
        clock=clock,
        sessionmaker=db.sessionmaker,
        rate_limits=RateLimitStats(),
    )
    metrics.collector.attach_snmp(ProbeStats())
    await metrics.case_stats.maybe_refresh()
    registry: CollectorRegistry = metrics.registry
    # The distributed wiring's collectors (nms probe / nms detector), with data.
    bus = BusStats()
    bus.published["ping"] += 1
    bus.received["ping"] += 1
    bus.rejected["version"] += 1
    registry.register(BusCollector(bus, role="detector"))
    shards = ShardMonitor(clock=clock, stale_after=timedelta(seconds=15))
    shards.note(
        Heartbeat(shard="1/2", alive=True, icmp_targets=1, snmp_targets=0, cycles=1,
                  overruns=0, buffered=0, dropped=0)
    )  # fmt: skip
    registry.register(shards)
    delay = Histogram(
        "nms_bus_observation_delay_seconds", "delay", buckets=DELAY_BUCKETS, registry=registry
    )
    delay.observe(0.01)
    text = generate_latest(registry).decode()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


async def test_every_queried_metric_is_exported(database: Database):  # noqa: F811
    await migrate_detector_state(database.engine)
    try:
        exported = await exported_names(database)
    finally:
        if database.backend == "postgres":
            await drop_detector_schema(database.engine)  # the session's shared database
    recorded = {r["record"] for r in rules() if "record" in r}
    generated_by_prometheus = {"up"}
    missing = []
    for query in [*dashboard_queries(), *rule_queries()]:
        for name in metric_names(substitute(query.expr, {"ntu": "n1"})):
            if name not in exported | recorded | generated_by_prometheus:
                missing.append(f"{query.where}: {name}")
    assert not missing, "queried but not exported:\n" + "\n".join(missing)
