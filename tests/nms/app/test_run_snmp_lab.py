"""End to end through ``nms run``: degraded service (P2), SNMP service status, reboots.

Lab hosts with a real net-snmp agent and a WAN interface (``nms.lab.wan``); time is
compressed: P2 windows of 8 s, clear after 4 s, P1 after 4 s.
"""

from __future__ import annotations

import sqlite3
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nms.lab import LabFleet, wan
from nms.lab.responder import LatencyResponder
from tests.lab_fixtures import LabFleetFactory, lab_fleet  # noqa: F401 - fixture
from tests.nms.nms_process import NmsProcess, running, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.slow]

CLEAR_AFTER = 4.0
# For tests of another P2 rule: loss thresholds no fault here reaches.
LOSS_RULE_OFF = {
    "NMS_DETECTOR__DEGRADED__LOSS_OPEN": "0.9",
    "NMS_DETECTOR__DEGRADED__LOSS_CLEAR": "0.5",
}
P2_ENV = {
    "NMS_PROBES__ICMP__COUNT": "5",
    "NMS_PROBES__ICMP__SPACING": "50ms",
    "NMS_PROBES__ICMP__TIMEOUT": "400ms",
    "NMS_DETECTOR__DEGRADED__WINDOW": "8s",
    "NMS_DETECTOR__DEGRADED__CLEAR_AFTER": f"{CLEAR_AFTER:.0f}s",
    "NMS_DETECTOR__DEGRADED__FLAP_WINDOW": "12s",
    "NMS_DETECTOR__DEGRADED__LATENCY_OPEN": "100ms",
    "NMS_DETECTOR__DEGRADED__LATENCY_CLEAR": "80ms",
    "NMS_PROBES__SNMP__INTERVAL": "2s",
    "NMS_PROBES__SNMP__TIMEOUT": "500ms",
    "NMS_PROBES__SNMP__RETRIES": "0",
}


def write_snmp_inventory(path: Path, fleet: LabFleet, count: int) -> list[str]:
    lines = ["customers:", "  - {id: cust1, name: Customer One}", "ntus:"]
    ids = []
    for i, address in enumerate(fleet.addresses[:count]):
        ids.append(f"ntu-{i:03d}")
        lines.append(
            f'  - {{id: ntu-{i:03d}, customer: cust1, service_id: SVC-{i}, address: "{address}",'
            " snmp: {community: public, wan: {name: wan0}}}"
        )
    path.write_text("\n".join(lines) + "\n")
    return ids


@pytest.fixture
def fleet(lab_fleet: LabFleetFactory) -> LabFleet:  # noqa: F811
    fleet = lab_fleet(hosts=1, ntus_per_host=2)
    wan.add_wan(fleet.hosts[0])
    fleet.start_snmpd(fleet.hosts[0])
    return fleet


@pytest.fixture
def nms(tmp_path: Path, fleet: LabFleet) -> NmsProcess:
    inventory = tmp_path / "inventory.yaml"
    write_snmp_inventory(inventory, fleet, 2)
    return NmsProcess(
        workdir=tmp_path, inventory=inventory, database=tmp_path / "nms.db", env=P2_ENV
    )


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def ntu_row(nms: NmsProcess, ntu_id: str) -> dict[str, Any]:
    """The detector's stored state of one NTU ({} before its first write)."""
    with sqlite3.connect(nms.database) as db:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT * FROM ntu_states WHERE ntu_id = ?", (ntu_id,)).fetchone()
    return dict(row) if row is not None else {}


def test_loss_opens_one_p2_and_recovery_honours_hysteresis(fleet: LabFleet, nms: NmsProcess):
    with running(nms):
        nms.wait_status("ntu-000", "up", timeout=10)
        fleet.set_loss(fleet.hosts[0], 20)
        # Both NTUs of the host are lossy: each gets its P2, maybe in the same cycle.
        case = wait_for("a P2", lambda: nms.cases(), timeout=25)[0]
        assert case["priority"] == "P2"
        assert case["dedup_key"].endswith(":degraded")
        assert "packet loss" in case["summary"]
        time.sleep(3)
        # Both NTUs of the host are lossy: one P2 each, never more.
        cases = nms.cases()
        assert len(cases) <= 2
        assert all(c["priority"] == "P2" for c in cases)
        fleet.clear_loss(fleet.hosts[0])
        cleared_at = datetime.now(UTC)
        solved = wait_for(
            "the P2 to be solved",
            lambda: [c for c in nms.cases() if c["status"] == "solved"],
            timeout=30,
        )[0]
        # Hysteresis: solved only after clear_after of good service, never at once.
        assert ts(solved["solved_at"]) - cleared_at >= timedelta(seconds=CLEAR_AFTER)
        assert nms.status("ntu-000")["status"] == "up"


def test_latency_opens_a_p2(fleet: LabFleet, nms: NmsProcess):
    # The user-space responder loses an echo now and then while it takes over (and
    # under load): keep the loss rule out of the race, so the P2 is the latency rule's.
    with running(nms, **LOSS_RULE_OFF):
        nms.wait_status("ntu-000", "up", timeout=10)
        with LatencyResponder(host=fleet.hosts[0], delay=0.15):
            case = wait_for("a P2", lambda: nms.cases(), timeout=25)[0]
        assert case["priority"] == "P2"
        assert "average RTT" in case["summary"]


def test_flapping_opens_a_p2_and_no_p1(fleet: LabFleet, nms: NmsProcess):
    # A flap also loses a burst's echoes now and then: keep the loss rule out of the
    # race, so the P2 is the flapping rule's.
    with running(nms, **LOSS_RULE_OFF):
        nms.wait_status("ntu-000", "up", timeout=10)
        host = fleet.hosts[0]
        stop = threading.Event()

        def flap() -> None:
            while not stop.is_set():
                fleet.link_down(host)
                stop.wait(1.5)  # shorter than down_after: never a P1
                fleet.link_up(host)
                stop.wait(1.5)

        flapper = threading.Thread(target=flap)
        flapper.start()
        try:
            cases = wait_for("a P2", lambda: nms.cases(), timeout=30)
        finally:
            stop.set()
            flapper.join()
            fleet.link_up(host)
        assert {c["priority"] for c in cases} == {"P2"}
        assert any("up/down changes" in c["summary"] for c in cases)


def test_wan_carrier_down_with_management_up_opens_a_p1(fleet: LabFleet, nms: NmsProcess):
    with running(nms):
        nms.wait_status("ntu-000", "up", timeout=10)
        wait_for(
            "WAN status", lambda: ntu_row(nms, "ntu-000").get("wan_oper_status") == 1, timeout=10
        )
        wan.carrier_down(fleet.hosts[0])
        # snmpd refreshes its interface table every few seconds; then down_after.
        cases = wait_for("P1 cases", lambda: c if len(c := nms.cases()) == 2 else None, timeout=25)
        assert {c["priority"] for c in cases} == {"P1"}
        assert ntu_row(nms, "ntu-000")["wan_oper_status"] == 2
        assert ntu_row(nms, "ntu-000")["icmp_filtered"] == 0
        wan.carrier_up(fleet.hosts[0])
        wait_for("solved", lambda: all(c["status"] == "solved" for c in nms.cases()), timeout=25)


def test_wan_admin_down_is_no_case(fleet: LabFleet, nms: NmsProcess):
    with running(nms):
        nms.wait_status("ntu-000", "up", timeout=10)
        wan.admin_down(fleet.hosts[0])
        wait_for(
            "admin down seen",
            lambda: ntu_row(nms, "ntu-000").get("wan_admin_status") == 2,
            timeout=15,
        )
        time.sleep(6)
        assert nms.cases() == []
        assert nms.status("ntu-000")["status"] == "up"


def test_snmpd_restart_is_a_reboot_without_a_case(
    lab_fleet: LabFleetFactory,  # noqa: F811
    tmp_path: Path,
):
    fleet = lab_fleet(hosts=1, ntus_per_host=1)
    wan.add_wan(fleet.hosts[0])
    agent = fleet.start_snmpd(fleet.hosts[0])
    inventory = tmp_path / "inventory.yaml"
    write_snmp_inventory(inventory, fleet, 1)
    nms = NmsProcess(
        workdir=tmp_path, inventory=inventory, database=tmp_path / "nms.db", env=P2_ENV
    )
    with running(nms):
        wait_for("uptime", lambda: ntu_row(nms, "ntu-000").get("sys_uptime"), timeout=10)
        time.sleep(3)  # let the uptime grow past what a restart resets it to
        agent.restart()
        row = wait_for(
            "the reboot",
            lambda: r if (r := ntu_row(nms, "ntu-000")).get("reboots") == 1 else None,
            timeout=15,
        )
        assert row["last_reboot_at"] is not None
        assert "rebooted" in nms.log()
        time.sleep(3)
        assert nms.cases() == []


def test_a_trap_from_an_ntu_triggers_an_immediate_poll(
    fleet: LabFleet, tmp_path: Path, nms: NmsProcess
):
    port = free_udp_port()
    env = {
        "NMS_PROBES__SNMP__INTERVAL": "60s",  # without the trap, no poll for a minute
        "NMS_PROBES__SNMP__TRAPS__ENABLED": "true",
        "NMS_PROBES__SNMP__TRAPS__LISTEN": f"0.0.0.0:{port}",
    }
    with running(nms, **env):
        first = wait_for(
            "the first poll", lambda: ntu_row(nms, "ntu-000").get("sys_uptime"), timeout=10
        )
        time.sleep(2)
        host = fleet.hosts[0]
        ntu = fleet.addresses[0]
        # linkDown for ifIndex 4, sent from the NTU's own address, as a real NTU does.
        sent = subprocess.run(
            [
                "ip", "netns", "exec", host.netns, "snmptrap", "-v2c", "-c", "public",
                f"--clientaddr={ntu}", f"{host.our_v4}:{port}", "",
                "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.2.1.2.2.1.1.4", "i", "4",
            ],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        wait_for("the trap in the log", lambda: "trap linkDown" in nms.log(), timeout=5)
        wait_for(
            "a fresh poll",
            lambda: (ntu_row(nms, "ntu-000").get("sys_uptime") or 0) > first,
            timeout=5,
        )
        # A trap from an address that is no NTU is dropped.
        subprocess.run(
            [
                "ip", "netns", "exec", host.netns, "snmptrap", "-v2c", "-c", "public",
                f"{host.our_v4}:{port}", "", "1.3.6.1.6.3.1.1.5.3",
            ],
            capture_output=True, timeout=10,
        )  # fmt: skip
        time.sleep(1)
        assert nms.log().count("trap linkDown") == 1


def free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])
