"""The simulated NTU lab: real namespaces, real packets (fping), every fault and undo."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from ipaddress import IPv4Address, IPv4Network, IPv6Address

import pytest

from nms.lab import (
    LabCommandError,
    LabFleet,
    LabHost,
    cleanup_stale,
    netns,
    plan_host,
    registry,
    safety_routes,
)
from nms.lab import fleet as fleet_module
from nms.lab.plan import LAB_V4, LAB_V6, MAX_HOSTS
from tests.conftest import require_root
from tests.lab_fixtures import LabFleetFactory, fping
from tests.lab_fixtures import lab_fleet as lab_fleet  # the fixture

# -- the plan (no root needed) ---------------------------------------------------------


def test_plan_link_and_ntu_prefixes_never_overlap() -> None:
    nets: list[IPv4Network] = []
    for k in range(1, MAX_HOSTS + 1):
        host = plan_host(k, ntus=4094, ipv6=True)
        nets += [IPv4Network(f"{host.our_v4}/24", strict=False), host.ntu_net_v4]
        assert host.ntus_v4[0] == host.ntu_net_v4[1]
        assert host.ntus_v4[-1] == host.ntu_net_v4[-2]  # never the .0 or .255 ends
        assert host.ntu_net_v6 is not None
        assert host.ntu_net_v6.subnet_of(LAB_V6)
        assert all(a in LAB_V6 for a in (host.our_v6, host.ntu_side_v6, host.ntus_v6[-1]))
    assert all(net.subnet_of(LAB_V4) for net in nets)
    for i, a in enumerate(nets):
        for b in nets[i + 1 :]:
            assert not a.overlaps(b), (a, b)


@pytest.mark.parametrize(
    "kwargs",
    [{"hosts": 0}, {"hosts": MAX_HOSTS + 1}, {"ntus_per_host": 0}, {"ntus_per_host": 4095}],
)
def test_fleet_rejects_bad_sizes(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be within"):
        LabFleet(**kwargs)  # type: ignore[arg-type]


def test_down_before_up_is_a_no_op() -> None:
    fleet = LabFleet()
    fleet.down()
    fleet.down()
    assert fleet.addresses == []


# -- the real lab ----------------------------------------------------------------------


def _leftovers(host: LabHost, token: str) -> list[str]:
    """Anything of the fleet ``token``'s ``host`` still present on the machine.

    Another test run may already have reused the host index for its own fleet; under
    the lab lock its owner record says so, and then nothing there is ours.
    """
    with registry.locked():
        record = registry.read_record(host.netns)
        if record is not None and record.token != token:
            return []
        found = []
        if host.netns in netns.namespaces():
            found.append(f"namespace {host.netns}")
        if netns.link_exists(host.veth):
            found.append(f"device {host.veth}")
        routes = netns.run(["ip", "route"]) + netns.run(["ip", "-6", "route"])
        found += [
            line
            for line in routes.splitlines()
            if host.veth in line or line.startswith((f"{host.ntu_net_v4} ", f"{host.ntu_net_v6} "))
        ]
        if record is not None:
            found.append(f"owner record of {host.netns}")
        return found


def _safety_routes() -> list[str]:
    routes = netns.run(["ip", "route"]) + netns.run(["ip", "-6", "route"])
    return [
        line
        for line in routes.splitlines()
        if line.startswith(("unreachable 169.254.0.0/16 ", "unreachable fd4e:5455::/32 "))
    ]


def _assert_safety_routes_consistent() -> None:
    # Under the lab lock nobody else is building or tearing down a fleet right now.
    with registry.locked():
        if registry.lab_namespaces():
            assert len(_safety_routes()) == 2
        else:
            assert _safety_routes() == []


@pytest.mark.lab
def test_up_and_down_leave_nothing_behind() -> None:
    require_root()
    fleet = LabFleet(hosts=2, ntus_per_host=8, ipv6=True)
    with fleet:
        hosts = list(fleet.hosts)
        assert len(hosts) == 2
        assert len({h.index for h in hosts}) == 2
        assert len(fleet.addresses) == 2 * 8 * 2
        for host in hosts:
            assert host.netns in netns.namespaces()
            assert netns.link_exists(host.veth)
            assert fleet.host_of(host.ntus_v4[3]) is host
            assert fleet.host_of(str(host.ntus_v6[-1])) is host
        assert len(_safety_routes()) == 2
    for host in hosts:
        assert _leftovers(host, fleet.token) == []
    _assert_safety_routes_consistent()
    fleet.down()  # idempotent


@pytest.mark.lab
def test_every_ntu_answers(lab_fleet: LabFleetFactory) -> None:
    fleet = lab_fleet(hosts=3, ntus_per_host=100, ipv6=True)
    assert len(fleet.addresses) == 600
    seen = fping(fleet.addresses)
    lost = [address for address, result in seen.items() if result.received != 1]
    assert lost == []


@pytest.mark.lab
def test_link_down_times_out_until_link_up(lab_fleet: LabFleetFactory) -> None:
    fleet = lab_fleet(hosts=2, ntus_per_host=4, ipv6=True)
    down, other = fleet.hosts
    fleet.link_down(down)
    fleet.link_down(down)  # idempotent
    seen = fping(fleet.addresses, timeout_ms=200)
    for address in down.addresses:
        assert seen[str(address)].received == 0
        assert seen[str(address)].errors == []  # a timeout, not a local error
    assert all(seen[str(a)].received == 1 for a in other.addresses)
    fleet.link_up(down)
    fleet.link_up(down)
    # Neighbours were re-pinned: a burst right after the link came back gets through.
    seen = fping(down.addresses, count=20, period_ms=1)
    assert all(result.loss == 0.0 for result in seen.values()), seen


@pytest.mark.lab
def test_our_side_down_is_unreachable_at_once(lab_fleet: LabFleetFactory) -> None:
    fleet = lab_fleet(hosts=2, ntus_per_host=4, ipv6=True)
    down, other = fleet.hosts
    fleet.our_side_down(down)
    fleet.our_side_down(down)
    seen = fping(fleet.addresses, timeout_ms=200)
    for address in down.addresses:
        assert seen[str(address)].received == 0
        assert seen[str(address)].errors == ["No route to host"]  # EHOSTUNREACH
    assert all(seen[str(a)].received == 1 for a in other.addresses)
    # The safety route, not the default route, answers for the lab range.
    with pytest.raises(LabCommandError, match="No route to host"):
        netns.run(["ip", "route", "get", str(down.ntus_v4[0])])
    fleet.our_side_up(down)
    fleet.our_side_up(down)
    seen = fping(down.addresses, count=20, period_ms=1)
    assert all(result.loss == 0.0 for result in seen.values()), seen


@pytest.mark.lab
def test_silence_times_out_until_unsilenced(lab_fleet: LabFleetFactory) -> None:
    fleet = lab_fleet(hosts=2, ntus_per_host=4, ipv6=True)
    quiet, other = fleet.hosts
    fleet.silence(quiet)
    fleet.silence(quiet)
    seen = fping(fleet.addresses, timeout_ms=200)
    assert all(seen[str(a)].received == 0 for a in quiet.addresses)
    assert all(seen[str(a)].errors == [] for a in quiet.addresses)
    assert all(seen[str(a)].received == 1 for a in other.addresses)
    fleet.unsilence(quiet)
    fleet.unsilence(quiet)
    assert all(r.received == 1 for r in fping(quiet.addresses).values())


@pytest.mark.lab
def test_drop_address_silences_only_that_address(lab_fleet: LabFleetFactory) -> None:
    fleet = lab_fleet(hosts=1, ntus_per_host=16, ipv6=True)
    host = fleet.hosts[0]
    gone: list[IPv4Address | IPv6Address] = [host.ntus_v4[5], host.ntus_v6[7]]
    for address in gone:
        fleet.drop_address(address)
        fleet.drop_address(address)
    seen = fping(fleet.addresses, timeout_ms=200)
    assert sorted(a for a, r in seen.items() if r.received == 0) == sorted(map(str, gone))
    for address in gone:
        fleet.restore_address(address)
        fleet.restore_address(address)
    assert all(r.received == 1 for r in fping(fleet.addresses).values())


@pytest.mark.lab
def test_set_loss_loses_about_that_share(lab_fleet: LabFleetFactory) -> None:
    fleet = lab_fleet(hosts=2, ntus_per_host=2, ipv6=True)
    lossy, other = fleet.hosts
    fleet.set_loss(lossy, 30)
    fleet.set_loss(lossy, 30.0)  # replaces, does not add a second rule
    seen = fping([lossy.ntus_v4[0], lossy.ntus_v6[0], other.ntus_v4[0]], count=200, period_ms=1)
    for address in (lossy.ntus_v4[0], lossy.ntus_v6[0]):
        assert 0.15 <= seen[str(address)].loss <= 0.45, seen[str(address)]
    assert seen[str(other.ntus_v4[0])].loss == 0.0
    fleet.clear_loss(lossy)
    fleet.clear_loss(lossy)
    seen = fping([lossy.ntus_v4[0], lossy.ntus_v6[0]], count=50, period_ms=1)
    assert all(r.loss == 0.0 for r in seen.values())
    with pytest.raises(ValueError, match=r"within 0\.\.100"):
        fleet.set_loss(lossy, 101)


@pytest.mark.lab
def test_teardown_happens_when_the_body_raises() -> None:
    require_root()
    fleet = LabFleet(hosts=1, ntus_per_host=2)
    seen: list[LabHost] = []

    def body() -> None:
        with fleet:
            seen.extend(fleet.hosts)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        body()
    assert len(seen) == 1
    assert _leftovers(seen[0], fleet.token) == []
    _assert_safety_routes_consistent()


@pytest.mark.lab
def test_failed_up_tears_down_what_it_created(monkeypatch: pytest.MonkeyPatch) -> None:
    require_root()
    created: list[LabHost] = []

    def broken_inner_lines(host: LabHost) -> list[str]:
        created.append(host)
        return ["link set lo up", "route add this-is-not-a-route"]

    monkeypatch.setattr(fleet_module, "inner_create_lines", broken_inner_lines)
    fleet = LabFleet(hosts=2, ntus_per_host=2)
    with pytest.raises(LabCommandError, match="this-is-not-a-route"):
        fleet.up()
    assert created
    for host in created:
        assert _leftovers(host, fleet.token) == []
    assert not fleet.is_up
    _assert_safety_routes_consistent()


_CHILD = """
import sys
from nms.lab import LabFleet
fleet = LabFleet(hosts=2, ntus_per_host=2)
fleet.up()
print(fleet.token, " ".join(h.netns for h in fleet.hosts), flush=True)
sys.stdin.readline()
fleet.down()
"""


def _start_child() -> tuple[subprocess.Popen[str], str, list[str]]:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line:
        child.communicate(timeout=10)
        pytest.fail("child process failed to bring a fleet up")
    token, *names = line.split()
    return child, token, names


def _gone(name: str, token: str) -> bool:
    """Whether the namespace ``name`` of fleet ``token`` is gone (or reused by another)."""
    with registry.locked():
        record = registry.read_record(name)
        return name not in netns.namespaces() or (record is not None and record.token != token)


@pytest.mark.lab
def test_two_fleets_at_once_get_different_namespaces(lab_fleet: LabFleetFactory) -> None:
    child, child_token, child_names = _start_child()
    try:
        mine = lab_fleet(hosts=2, ntus_per_host=2)
        also_mine = lab_fleet(hosts=1, ntus_per_host=2)
        names = [h.netns for h in mine.hosts + also_mine.hosts]
        assert len(set(names + child_names)) == 5
        assert all(r.received == 1 for r in fping(mine.addresses + also_mine.addresses).values())
        mine.down()
        # Another fleet still exists: the safety routes stay.
        assert len(_safety_routes()) == 2
    finally:
        child.communicate("\n", timeout=20)
    assert child.returncode == 0
    assert all(_gone(name, child_token) for name in child_names)


@pytest.mark.lab
def test_cleanup_stale_removes_namespaces_of_a_killed_run() -> None:
    require_root()
    child, token, names = _start_child()
    os.kill(child.pid, signal.SIGKILL)  # a process we started, by its PID
    child.communicate(timeout=10)
    # (A fleet coming up in another test run may clean them up first: that is fine.)
    removed = cleanup_stale()
    assert all(name.startswith("ntulab") for name in removed)
    assert [name for name in names if not _gone(name, token)] == []
    _assert_safety_routes_consistent()


@pytest.mark.lab
def test_snmpd_answers_restarts_and_is_stopped_on_down() -> None:
    require_root()
    with LabFleet(hosts=1, ntus_per_host=3, ipv6=True) as fleet:
        host = fleet.hosts[0]
        agent = fleet.start_snmpd(host, sys_name="ntu-lab-1")
        pid = agent.pid
        assert pid is not None
        record = registry.read_record(host.netns)
        assert record is not None
        assert [p for p, _ in record.procs] == [pid]  # for cleanup_stale

        def snmpget(address: object, oid: str) -> str:
            return netns.run(
                ["snmpget", "-v2c", "-c", "public", "-t", "1", "-r", "1", "-Oqvt",
                 str(address), oid]
            ).strip().strip('"')  # fmt: skip

        for address in (host.ntus_v4[0], host.ntus_v4[2], f"udp6:[{host.ntus_v6[1]}]"):
            assert snmpget(address, "1.3.6.1.2.1.1.5.0") == "ntu-lab-1"
        # An agent on chosen addresses only: the others get no answer.
        picky = fleet.start_snmpd(host, addresses=[host.ntus_v4[1]], sys_name="x", port=1161)
        assert snmpget(f"{host.ntus_v4[1]}:1161", "1.3.6.1.2.1.1.5.0") == "x"
        with pytest.raises(LabCommandError, match="Timeout"):
            snmpget(f"{host.ntus_v4[0]}:1161", "1.3.6.1.2.1.1.5.0")
        picky.stop()
        fleet.silence(host)  # NTU silent to ping, SNMP still answers
        assert snmpget(host.ntus_v4[1], "1.3.6.1.2.1.1.5.0") == "ntu-lab-1"
        time.sleep(1.1)
        before = snmpget(host.ntus_v4[0], "1.3.6.1.2.1.1.3.0")
        agent.restart()
        assert agent.pid != pid
        after = snmpget(host.ntus_v4[0], "1.3.6.1.2.1.1.3.0")
        assert int(after) < int(before)
        last_pid = agent.pid
    assert last_pid is not None
    assert not netns.pid_alive(last_pid, None)
    assert not agent.running


def test_addresses_are_in_lab_range() -> None:
    host = plan_host(15, ntus=4094, ipv6=False)
    assert host.ntus_v4[-1] == IPv4Address("169.254.255.254")


@pytest.mark.lab
def test_safety_routes_hold_outlives_a_fleet() -> None:
    require_root()
    with safety_routes():
        with LabFleet(hosts=1, ntus_per_host=2):
            pass
        # The fleet is gone but the hold keeps the routes: sends still fail locally.
        assert len(_safety_routes()) == 2
        with pytest.raises(LabCommandError, match="No route to host"):
            netns.run(["ip", "route", "get", "169.254.250.1"])
    _assert_safety_routes_consistent()
