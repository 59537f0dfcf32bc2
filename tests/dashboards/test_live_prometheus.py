"""A real Prometheus scrapes ``nms run`` over the lab during an outage; every panel and
every rule is queried and must return data (and the availability and SLA compliance
rules the right figures).

The lab: host 0 has a net-snmp agent and a WAN interface whose carrier is cut (P1:
service down while management answers, so RTT, throughput and WAN status all exist
for that NTU); host 1 gets 30 % packet loss (P2). The first-response target is a few
seconds, so the P1 breaches and escalates while Prometheus watches.

Two more Prometheus scrape the same process with ``?per_ntu=not_up`` and
``?per_ntu=none`` (``metrics.per_ntu``): before the outage neither has a per-NTU
series; during it not_up has every panel's data (the two NTUs in trouble), none has
every fleet panel's and rule's data and no per-NTU series.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from nms.lab import LabFleet, wan
from tests.conftest import require
from tests.dashboards.promql import (
    DISTRIBUTED_ONLY,
    PROMETHEUS,
    dashboard_queries,
    dashboards,
    metric_names,
    panels,
    rule_queries,
    rules,
)
from tests.dashboards.promql import substitute as substitute_vars
from tests.lab_fixtures import LabFleetFactory, lab_fleet  # noqa: F401 - fixture
from tests.nms.nms_process import NmsProcess, free_port, running, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ENV = {
    "NMS_PROBES__ICMP__COUNT": "5",
    "NMS_PROBES__ICMP__SPACING": "50ms",
    "NMS_PROBES__ICMP__TIMEOUT": "400ms",
    "NMS_PROBES__SNMP__INTERVAL": "1s",
    "NMS_PROBES__SNMP__TIMEOUT": "500ms",
    "NMS_PROBES__SNMP__RETRIES": "0",
    "NMS_DETECTOR__DEGRADED__WINDOW": "5s",
    "NMS_DETECTOR__DEGRADED__CLEAR_AFTER": "4s",
    "NMS_CASES__FIRST_RESPONSE": "4s",
    "NMS_CASES__TICKER_INTERVAL": "500ms",
}
DOWN_NTU = "ntu-000"


class Prometheus:
    """``prometheus`` on a free loopback port with a temp config and data dir."""

    def __init__(
        self, workdir: Path, target: str | list[str], params: dict[str, list[str]] | None = None
    ) -> None:
        binary = shutil.which("prometheus")
        require(binary is not None, "needs prometheus (Debian package prometheus)")
        assert binary is not None
        config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
        config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        config["rule_files"] = [str(PROMETHEUS / "rules" / "*.yml")]
        job = config["scrape_configs"][0]
        job["scrape_timeout"] = "1s"
        job["static_configs"][0]["targets"] = [target] if isinstance(target, str) else target
        if params:
            job["params"] = params
        workdir.mkdir(exist_ok=True)
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "prometheus.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={workdir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self) -> Prometheus:
        wait_for("prometheus to be ready", self._ready, timeout=30)
        return self

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited:\n{self.log_path.read_text()}")
        try:
            return httpx.get(self.url + "/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = httpx.get(self.url + "/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        assert body["status"] == "success", f"{expr}: {body}"
        return list(body["data"]["result"])

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def prometheus(workdir: Path, target: str | list[str]) -> Iterator[Prometheus]:
    prom = Prometheus(workdir, target)
    try:
        yield prom.wait_ready()
    finally:
        prom.stop()


@contextlib.contextmanager
def narrowed_prometheus(workdir: Path, target: str) -> Iterator[dict[str, Prometheus]]:
    """Two more Prometheus on the same ``nms run``, scraping it with ``?per_ntu=not_up``
    and ``?per_ntu=none``: each mode's page from the same process, no second nms."""
    with contextlib.ExitStack() as stack:
        proms: dict[str, Prometheus] = {}
        for mode in ("not_up", "none"):
            prom = Prometheus(workdir / mode, target, params={"per_ntu": [mode]})
            stack.callback(prom.stop)
            proms[mode] = prom
        for prom in proms.values():
            prom.wait_ready()
        yield proms


def per_ntu(expr: str) -> bool:
    """Whether a query reads per-NTU series (empty when metrics.per_ntu is none)."""
    return any(name.startswith(("nms_ntu_", "nms:ntu_")) for name in metric_names(expr))


def reads(prom: Prometheus, expr: str, value: float) -> Callable[[], bool]:
    return lambda: prom.value(expr) == value


PER_NTU_PANEL = next(
    p["targets"][0]["expr"]
    for p in panels(dashboards()["nms-ntu-detail.json"])
    if p["title"] == "Per-NTU series"
)
ANY_PER_NTU = '{__name__=~"nms_ntu_.*"}'


@pytest.fixture
def fleet(lab_fleet: LabFleetFactory) -> LabFleet:  # noqa: F811
    fleet = lab_fleet(hosts=2, ntus_per_host=1)
    wan.add_wan(fleet.hosts[0])
    fleet.start_snmpd(fleet.hosts[0])
    return fleet


@pytest.fixture
def nms(tmp_path: Path, fleet: LabFleet) -> NmsProcess:
    a, b = fleet.addresses
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "customers:\n  - {id: cust1, name: Customer One}\nntus:\n"
        f'  - {{id: ntu-000, customer: cust1, service_id: SVC-0, address: "{a}",'
        " snmp: {community: public, wan: {name: wan0}}}\n"
        f'  - {{id: ntu-001, customer: cust1, service_id: SVC-1, address: "{b}"}}\n'
    )
    return NmsProcess(workdir=tmp_path, inventory=inventory, database=tmp_path / "nms.db", env=ENV)


def test_every_panel_and_rule_returns_data_during_an_outage(
    tmp_path: Path, fleet: LabFleet, nms: NmsProcess
):
    target = f"127.0.0.1:{nms.port}"
    with (
        running(nms),
        prometheus(tmp_path, target) as prom,
        narrowed_prometheus(tmp_path, target) as modes,
    ):
        nms.wait_status("ntu-000", "up", timeout=15)
        nms.wait_status("ntu-001", "up", timeout=15)
        wired = "nms_case_stats_age_seconds" in httpx.get(nms.url + "/metrics", timeout=5).text
        assert wired, (
            "nms run serves no case figures: wire nms.noc.metrics.build_metrics in runtime"
        )

        def wan_rate() -> bool:
            return prom.value('nms_ntu_wan_errors_per_second{ntu="ntu-000"}') is not None

        wait_for("a WAN rate in Prometheus", wan_rate, timeout=15)
        # Both NTUs up: with not_up (and none) no per-NTU series at all, fleet counts yes.
        for mode, narrow in modes.items():
            wait_for(
                f"{mode}: two NTUs up", reads(narrow, 'sum(nms_ntus{state="up"})', 2), timeout=10
            )
            assert not narrow.query(ANY_PER_NTU), mode
        wan.carrier_down(fleet.hosts[0])
        fleet.set_loss(fleet.hosts[1], 30)

        def p1_and_p2() -> bool:
            return {c["priority"] for c in nms.cases()} >= {"P1", "P2"}

        wait_for("a P1 and a P2", p1_and_p2, timeout=40)
        wait_for(
            "Prometheus to see the P1 breach its first response",
            lambda: prom.value('sum(nms_cases_sla_breached{priority="P1"})') == 1,
            timeout=20,
        )
        wait_for(
            "the rules to be evaluated",
            lambda: prom.value("count(nms:cases_open:sum_by_priority)") == 3,
            timeout=10,
        )
        time.sleep(2)  # a few more scrapes, so increase() over the window is defined

        empty = []
        for query in [*dashboard_queries(), *rule_queries()]:
            expr = substitute_vars(query.expr, {"ntu": DOWN_NTU})
            if not prom.query(expr):
                empty.append(f"{query.where}: {expr}")
        assert not empty, "no data:\n" + "\n".join(empty) + "\n" + nms.log()[-3000:]

        # Alerts also parse and evaluate as a whole (most are quiet, which is right).
        for rule in rules():
            prom.query(" ".join(str(rule["expr"]).split()))

        # The NTU variable of the detail dashboard lists the fleet.
        values = httpx.get(
            prom.url + "/api/v1/label/ntu/values",
            params={"match[]": "nms_ntu_state"},
            timeout=5,
        ).json()["data"]
        assert set(values) == {"ntu-000", "ntu-001"}

        # What the NOC sees is true: one NTU down, one degraded, the P1 escalated.
        assert prom.value('sum(nms_ntus{state="down"})') == 1
        assert prom.value('sum(nms_ntus_with_open_case{priority="P2"})') == 1
        assert prom.value('nms_ntu_wan_oper_status{ntu="ntu-000"}') != 1
        assert prom.value('sum(nms_cases_escalation_level{priority="P1",level="L2"})') == 1
        assert prom.value("nms_detector_leader") == 1

        # Availability and SLA compliance as the recording rules give them: one NTU of
        # two is down now; it answered before, so its hour and the fleet's windows lie
        # in between. The P1 missed its first response: 0 % for P1, below 100 % overall.
        wait_for(
            "fleet availability 1/2",
            lambda: prom.value("nms:fleet_availability:ratio") == 0.5,
            timeout=10,
        )
        worst = prom.query("bottomk(1, nms:ntu_availability:ratio_1h)")
        assert worst[0]["metric"]["ntu"] == DOWN_NTU, worst
        lowest = float(worst[0]["value"][1])
        assert 0 < lowest < 1, worst
        for window in ("ratio_5m", "ratio_1h", "ratio_1d"):
            ratio = prom.value(f"nms:fleet_availability:{window}")
            assert ratio is not None and lowest < ratio < 1, (window, ratio)
        p1 = 'nms:sla_compliance:ratio_by_priority{priority="P1",sla="first_response"}'
        assert prom.value(p1) == 0
        assert not prom.query('nms:sla_compliance:ratio_by_priority{priority="P3"}')  # no case
        first = prom.value("nms:sla_first_response_compliance:ratio")
        assert first is not None and first < 1

        # The same page with fewer per-NTU series (metrics.per_ntu), as documented.
        assert prom.value(PER_NTU_PANEL) == 2  # "all" on the NTU detail dashboard
        not_up, none = modes["not_up"], modes["none"]
        for mode, narrow, code in (("not_up", not_up, 1), ("none", none, 0)):
            wait_for(
                f"{mode}: fleet availability 1/2",
                reads(narrow, "nms:fleet_availability:ratio", 0.5),
                timeout=10,
            )
            assert narrow.value(PER_NTU_PANEL) == code, mode
            empty = []
            for query in [*dashboard_queries(), *rule_queries()]:
                expr = substitute_vars(query.expr, {"ntu": DOWN_NTU})
                if (mode == "not_up" or not per_ntu(expr)) and not narrow.query(expr):
                    empty.append(f"{query.where}: {expr}")
            assert not empty, f"{mode}: no data:\n" + "\n".join(empty)
            for window in ("ratio_5m", "ratio_1h"):  # the fleet figures do not change
                assert narrow.value(f"nms:fleet_availability:{window}") is not None
        # not_up: the down NTU and the degraded one (a P2 open), each with all its series.
        assert {r["metric"]["ntu"] for r in not_up.query("nms_ntu_state")} == {"ntu-000", "ntu-001"}
        assert not_up.value('nms_ntu_wan_oper_status{ntu="ntu-000"}') != 1
        assert not_up.value('nms_ntu_loss_ratio{ntu="ntu-001"}') is not None
        # none: no per-NTU series; the fleet figures are the same as with all.
        assert not none.query(ANY_PER_NTU)
        assert not none.query("nms:ntu_availability:ratio_1h")
        assert none.value('sum(nms_ntus{state="down"})') == 1
        assert none.value('sum(nms_ntus_with_open_case{priority="P2"})') == 1

        # Every metric name the panels and rules use is in the scrape.
        page = httpx.get(nms.url + "/metrics", timeout=5).text
        scraped = {
            line.split("{")[0].split(" ")[0] for line in page.splitlines() if line[:1] != "#"
        }
        recorded = {r["record"] for r in rules() if "record" in r}
        for query in [*dashboard_queries(), *rule_queries()]:
            for name in metric_names(substitute_vars(query.expr, {"ntu": DOWN_NTU})):
                if name not in DISTRIBUTED_ONLY:  # tests/distributed/test_cluster.py
                    assert name in scraped | recorded | {"up"}, f"{query.where}: {name} not scraped"
