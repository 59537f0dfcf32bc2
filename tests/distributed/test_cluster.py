"""End to end: the distributed wiring as real processes over the lab.

Two ``nms probe`` shards, two ``nms detector`` (one leads) and one ``nms api`` over a
Mosquitto the test owns and a fresh PostgreSQL database reached through a proxy the
test can cut. Time is compressed as in ``tests/nms/nms_process.FAST``.

The broker is the production set-up: ``mqtts://`` only, a client certificate of the
test's CA required, and the committed ACL file - each probe shard may write only
under its own name (``tests/nms/bus/test_mqtt_tls.py`` shows the refusals in-process).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from nms.lab import LabFleet
from nms.probing.shard import Shard
from tests.conftest import require_root
from tests.dashboards.promql import DISTRIBUTED_ONLY
from tests.dashboards.test_live_prometheus import prometheus
from tests.distributed.cluster import Cluster, create_database, drop_database, running
from tests.lab_fixtures import LabFleetFactory, lab_fleet  # noqa: F401 - fixture
from tests.mosquitto import Mosquitto, mosquitto_tls  # noqa: F401 - fixture
from tests.nms.nms_process import wait_for, write_inventory

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.postgres]

INTERVAL = 1.0
NTUS = 8
#: Seconds for a fresh cluster's NTUs to read up: a precondition, not a timing under
#: test (the cluster's processes start on a CI machine whose two cores run other tests).
UP_WITHIN = 60


def ts(text: str | None) -> datetime:
    assert text is not None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def fleet(lab_fleet: LabFleetFactory) -> LabFleet:  # noqa: F811
    require_root()
    return lab_fleet(hosts=1, ntus_per_host=NTUS)


@pytest.fixture
def database() -> Iterator[str]:
    name = f"nms_dist_{os.getpid()}"
    try:
        url = create_database(name)
    except Exception as exc:
        from tests.conftest import require

        require(False, f"PostgreSQL unavailable: {exc}")
        raise
    yield url
    drop_database(name)


def make_cluster(
    tmp_path: Path, fleet: LabFleet, database: str, broker: Mosquitto, **env: str
) -> tuple[Cluster, list[str]]:
    inventory = tmp_path / "inventory.yaml"
    ids = write_inventory(inventory, fleet.addresses)
    assert broker.pki is not None and broker.url.startswith("mqtts://")
    cluster = Cluster(
        workdir=tmp_path,
        inventory=inventory,
        database=database,
        broker=broker.url,
        env=env,
        pki=broker.pki,
    )
    return cluster, ids


def test_a_dead_shard_leaves_its_ntus_unknown_and_opens_no_case(
    tmp_path: Path,
    fleet: LabFleet,
    database: str,
    mosquitto_tls: Mosquitto,  # noqa: F811
):
    cluster, ids = make_cluster(tmp_path, fleet, database, mosquitto_tls)
    with running(cluster) as c:
        c.wait_status(ids, "up", timeout=UP_WITHIN)
        first = Shard(1, 2)
        mine = [i for i in ids if first.owns(i)]
        others = [i for i in ids if not first.owns(i)]
        assert mine and others, "the test needs NTUs in both shards"
        leader = c.leader()
        assert leader is not None
        targets = [f"127.0.0.1:{p.port}" for p in [*c.probes, *c.detectors]]
        (tmp_path / "prometheus").mkdir()
        with prometheus(tmp_path / "prometheus", targets) as prom:
            # A real Prometheus scrapes every worker and detector: the distributed-only
            # figures the dashboards and rules use are there.
            wait_for(
                "shards in Prometheus",
                lambda: prom.value("count(nms_probe_shard_up)") == 2,
                timeout=20,
            )
            for name in sorted(DISTRIBUTED_ONLY - {"nms_bus_messages_rejected_total"}):
                wait_for(f"{name} scraped", partial(prom.query, name), timeout=10)
            p99 = (
                "histogram_quantile(0.99, sum by (le) "
                "(rate(nms_bus_observation_delay_seconds_bucket[10s])))"
            )
            delay = wait_for("the delay histogram", lambda: prom.value(p99), timeout=10)
            assert 0 < delay < 2.5
            assert prom.value("sum(nms_detector_leader)") == 1

            c.probes[0].kill()
            # The broker sends the worker's will: the NOC sees the shard down at once.
            down = 'nms_probe_shard_up{shard="1/2"}'
            wait_for("shard 1/2 down", lambda: prom.value(down) == 0, timeout=5)
            assert prom.value("(min(nms_probe_shard_up) or vector(1))") == 0  # the alert fires
            c.wait_status(mine, "unknown", timeout=6 + 5)  # stale_after 6 s
            assert all(c.status(i) == "up" for i in others)
            time.sleep(4 + INTERVAL + 1)  # longer than down_after: still no case
            assert c.cases() == []
            assert c.leader() is leader
            # A clean stop says goodbye: down at once, exit 0.
            assert c.probes[1].stop() == 0
            wait_for(
                "shard 2/2 down",
                lambda: prom.value('nms_probe_shard_up{shard="2/2"}') == 0,
                timeout=3,
            )


def test_leader_killed_mid_outage_standby_opens_one_case_on_time(
    tmp_path: Path,
    fleet: LabFleet,
    database: str,
    mosquitto_tls: Mosquitto,  # noqa: F811
):
    down_after = 8.0
    cluster, ids = make_cluster(
        tmp_path, fleet, database, mosquitto_tls, NMS_DETECTOR__DOWN_AFTER="8s"
    )
    with running(cluster) as c:
        c.wait_status(ids, "up", timeout=UP_WITHIN)
        leader = c.leader()
        assert leader is not None
        fault_at = now()
        fleet.drop_address(fleet.addresses[3])
        c.wait_status([ids[3]], "suspect", timeout=INTERVAL + 3)
        time.sleep(2)
        leader.kill()
        cases = wait_for("the case", c.cases, timeout=down_after + 10)
        assert len(cases) == 1
        case = cases[0]
        assert case["ntu_id"] == ids[3]
        assert case["priority"] == "P1"
        outage_start = ts(case["outage_start"])
        # The standby resumed the outage from the database: it starts at the first
        # failed probe before the failover, and the case opens down_after later.
        assert fault_at - timedelta(seconds=0.2) <= outage_start
        assert outage_start <= fault_at + timedelta(seconds=INTERVAL + 0.5)
        detected = ts(case["detected_at"])
        assert detected - outage_start >= timedelta(seconds=down_after)
        assert detected - outage_start <= timedelta(seconds=down_after + INTERVAL + 2.5)
        standby = c.leader()
        assert standby is not None and standby is not leader
        time.sleep(3)
        assert len(c.cases()) == 1


def test_broker_restart_loses_no_case_and_duplicates_none(
    tmp_path: Path,
    fleet: LabFleet,
    database: str,
    mosquitto_tls: Mosquitto,  # noqa: F811
):
    cluster, ids = make_cluster(tmp_path, fleet, database, mosquitto_tls)
    with running(cluster) as c:
        c.wait_status(ids, "up", timeout=UP_WITHIN)
        fleet.drop_address(fleet.addresses[1])
        wait_for("the first case", c.cases, timeout=4 + INTERVAL + 8)
        mosquitto_tls.stop()
        fault_at = now()
        fleet.drop_address(fleet.addresses[5])
        time.sleep(3)
        mosquitto_tls.start()

        def two_cases() -> list[dict[str, Any]] | None:
            cases = c.cases()
            return cases if len(cases) >= 2 else None

        cases = wait_for("the second case", two_cases, timeout=4 + INTERVAL + 15)
        time.sleep(3)
        cases = c.cases()
        assert sorted(case["ntu_id"] for case in cases) == [ids[1], ids[5]]
        second = next(case for case in cases if case["ntu_id"] == ids[5])
        assert ts(second["outage_start"]) >= fault_at - timedelta(seconds=0.2)
        for probe in c.probes:
            connects = probe.metrics()[("nms_bus_connects_total", (("role", "probe"),))]
            assert connects >= 2, f"{probe.name} did not reconnect"


def test_database_outage_gives_503_and_everything_recovers(
    tmp_path: Path,
    fleet: LabFleet,
    database: str,
    mosquitto_tls: Mosquitto,  # noqa: F811
):
    cluster, ids = make_cluster(tmp_path, fleet, database, mosquitto_tls)
    with running(cluster) as c:
        c.wait_status(ids, "up", timeout=UP_WITHIN)
        c.proxy.block()

        def unavailable() -> bool:
            response = c.request("/v1/cases")
            return response.status_code == 503 and "Retry-After" in response.headers

        wait_for("503 with Retry-After", unavailable, timeout=15)
        problem = c.request("/v1/cases").json()
        assert problem["code"] == "database_unavailable"
        time.sleep(3)
        assert all(p.alive() for p in c.procs), c.logs()
        c.proxy.unblock()
        wait_for("the API back", lambda: c.request("/v1/cases").status_code == 200, timeout=20)
        wait_for("a leading detector again", c.leader, timeout=30)
        # The pipeline works end to end after the outage.
        fleet.drop_address(fleet.addresses[2])
        cases = wait_for("a case after recovery", c.cases, timeout=4 + INTERVAL + 15)
        assert [case["ntu_id"] for case in cases] == [ids[2]]
