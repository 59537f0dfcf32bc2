"""The SNMP client and poller against real agents: snmpd in the lab, snmpsim, net-snmp CLI."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from nms.lab.netns import netns_exec
from nms.lab.snmpsim import SnmpsimAgent
from probes.errors import ProbeAuthError, ProbeTimeoutError, ProbeUnreachableError
from probes.snmp import ber
from probes.snmp import usm as usm_module
from probes.snmp.client import ClientSettings, SnmpClient
from probes.snmp.flows import Request
from probes.snmp.pdu import Pdu, PduType
from probes.snmp.poller import SnmpPoller
from probes.snmp.target import (
    AuthProtocol,
    PrivProtocol,
    SnmpTarget,
    SnmpVersion,
    UsmCredentials,
    WanSelector,
)
from tests.conftest import require_root
from tests.lab_fixtures import LabFleetFactory, lab_fleet  # noqa: F401

# pysnmp 7.1's pysnmp.smi.compiler imports pysmi names that pysmi has deprecated; the
# warning fires once, when pysnmp.hlapi is first imported (lazily, by probes.snmp.usm).
PYSNMP_IMPORT_WARNINGS = (
    "ignore:.* is deprecated. Please use:DeprecationWarning:pysnmp.smi.compiler"
)
FAST = ClientSettings(timeout=0.3, retries=1, total_timeout=1.0)
SYS_NAME = ber.parse_oid("1.3.6.1.2.1.1.5.0")
SYS_UPTIME = ber.parse_oid("1.3.6.1.2.1.1.3.0")
SYS_DESCR = ber.parse_oid("1.3.6.1.2.1.1.1.0")
IF_DESCR = ber.parse_oid("1.3.6.1.2.1.2.2.1.2")
IF_NAME = ber.parse_oid("1.3.6.1.2.1.31.1.1.1.1")
IF_OPER = ber.parse_oid("1.3.6.1.2.1.2.2.1.8")


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cli(tool: str, *args: str, netns: str | None = None) -> dict[str, str]:
    """Run snmpget / snmpwalk with numeric output; return {oid: value text}."""
    argv = [tool, "-On", "-Oe", "-Oq", "-Ot", "-Ox", "-t", "1", "-r", "1", *args]
    if netns is not None:
        argv = ["ip", "netns", "exec", netns, *argv]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout
    values: dict[str, str] = {}
    current = ""
    for line in out.splitlines():
        if not line.startswith("."):  # hex strings wrap after 16 octets
            values[current] += " " + line.strip()
            continue
        oid, _, value = line.partition(" ")
        current = oid.lstrip(".")
        values[current] = value.strip().strip('"')
    return values


def as_cli_text(value: ber.Value) -> str:
    """Our value in the form snmpget prints with -Oq -Oe -Ot -Ox."""
    if isinstance(value, ber.OctetString):
        return " ".join(f"{b:02X}" for b in value.value) if value.value else ""
    if isinstance(value, ber.ObjectIdentifier):
        return "." + ber.format_oid(value.value)
    if isinstance(value, ber.IpAddress):
        return ".".join(map(str, value.value))
    assert not isinstance(
        value, ber.Null | ber.NoSuchObject | ber.NoSuchInstance | ber.EndOfMibView
    )
    assert not isinstance(value, ber.Opaque)
    return str(value.value)


def norm(text: str) -> str:
    return text.replace("\n", " ").replace("  ", " ").strip('" ')


def compare(ours: list[tuple[ber.Oid, ber.Value]], theirs: dict[str, str]) -> None:
    assert {ber.format_oid(o) for o, _ in ours} == set(theirs)
    for oid, value in ours:
        assert norm(as_cli_text(value)) == norm(theirs[ber.format_oid(oid)]), ber.format_oid(oid)


def target(address: str, **kw: object) -> SnmpTarget:
    return SnmpTarget(key=f"ntu-{address}", address=IPv4Address(address), community="public", **kw)  # type: ignore[arg-type]


@pytest.mark.lab
async def test_lab_snmpd_values_equal_net_snmp_tools(lab_fleet: LabFleetFactory) -> None:  # noqa: F811
    fleet = lab_fleet(hosts=1, ntus_per_host=4)
    host = fleet.hosts[0]
    fleet.start_snmpd(host)
    address = str(host.ntus_v4[0])
    t = target(address)
    async with SnmpClient(settings=FAST) as client:
        got = await client.get(t, [SYS_NAME, SYS_DESCR, (*IF_OPER, 1)])
        compare(
            list(got),
            cli("snmpget", "-v2c", "-c", "public", address, *(ber.format_oid(o) for o, _ in got)),
        )
        for column in (IF_DESCR, IF_NAME, IF_OPER):
            rows = await client.walk(t, column)
            assert rows
            compare(rows, cli("snmpwalk", "-v2c", "-c", "public", address, ber.format_oid(column)))
        v1 = SnmpTarget(
            key="v1", address=IPv4Address(address), community="public", version=SnmpVersion.V1
        )
        assert await client.walk(v1, IF_DESCR) == await client.walk(t, IF_DESCR)
        # wrong community: v2c agents stay silent, so it is a timeout
        wrong = SnmpTarget(key="x", address=IPv4Address(address), community="not-the-one")
        started = time.monotonic()
        with pytest.raises(ProbeTimeoutError):
            await client.get(wrong, [SYS_NAME])
        assert time.monotonic() - started < FAST.total_timeout + 0.5
        assert client.stats.retransmissions >= 1
        fleet.our_side_down(host)
        with pytest.raises(ProbeUnreachableError, match="EHOSTUNREACH"):
            await client.get(t, [SYS_NAME])
        fleet.our_side_up(host)


@pytest.mark.lab
async def test_poller_resolves_the_wan_port_and_re_resolves_after_restart(
    lab_fleet: LabFleetFactory,  # noqa: F811
) -> None:
    fleet = lab_fleet(hosts=1, ntus_per_host=4)
    host = fleet.hosts[0]
    ns = host.netns
    netns_exec(ns, ["ip", "link", "add", "wan0", "type", "veth", "peer", "name", "wan0p"])
    netns_exec(ns, ["ip", "link", "set", "wan0", "alias", "CUSTOMER-WAN", "up"])
    agent = fleet.start_snmpd(host)
    address = str(host.ntus_v4[0])
    targets = [
        target(address, wan=WanSelector(by="name", value="wan0")),
        SnmpTarget(key="descr", address=IPv4Address(address), community="public",
                   wan=WanSelector(by="descr", value="wan0")),
        SnmpTarget(key="index", address=IPv4Address(address), community="public",
                   wan=WanSelector(by="index", value=1)),
        SnmpTarget(key="v1", address=IPv4Address(address), community="public",
                   version=SnmpVersion.V1, wan=WanSelector(by="name", value="wan0")),
    ]  # fmt: skip
    names = cli("snmpwalk", "-v2c", "-c", "public", address, "1.3.6.1.2.1.31.1.1.1.1")
    index = int(next(k for k, v in names.items() if norm(v) == "77 61 6E 30").rsplit(".", 1)[1])
    async with SnmpClient(settings=FAST) as client:
        poller = SnmpPoller(client=client)
        results = await poller.poll(targets)
        by_key = {r.key: r for r in results}
        for key in (targets[0].key, "descr", "v1"):
            r = by_key[key]
            assert r.reachable and r.if_index == index, r
            assert r.if_oper_status is not None and r.if_admin_status == 1
            assert r.in_errors is not None and r.in_discards is not None
        assert by_key[targets[0].key].counters_64bit
        assert not by_key["v1"].counters_64bit and by_key["v1"].in_octets is not None  # 32-bit
        assert by_key["index"].if_index == 1 and by_key["index"].counters_64bit
        theirs = cli("snmpget", "-v2c", "-c", "public", address, f"1.3.6.1.2.1.2.2.1.8.{index}")
        assert str(by_key["descr"].if_oper_status) == next(iter(theirs.values()))
        # "reboot" with a renumbered WAN port: the index moves, sysUpTime restarts
        netns_exec(ns, ["ip", "link", "del", "wan0"])
        netns_exec(ns, ["ip", "link", "add", "wan0", "type", "veth", "peer", "name", "wan0p"])
        agent.restart()
        results = await poller.poll(targets[:1])
        assert results[0].reachable and results[0].if_index not in (None, index), results[0]
        cached = poller.cached(targets[0].key)
        assert cached is not None and cached.if_index == results[0].if_index


@pytest.mark.lab
async def test_snmpsim_recordings_equal_net_snmp_tools(lab_fleet: LabFleetFactory) -> None:  # noqa: F811
    fleet = lab_fleet(hosts=1, ntus_per_host=4)
    host = fleet.hosts[0]
    address = host.ntus_v4[1]
    sim = SnmpsimAgent(address=address, netns=host.netns)
    sim.start()
    try:
        async with SnmpClient(
            settings=ClientSettings(timeout=2.0, retries=1, total_timeout=5.0)
        ) as client:
            for community in ("vyatta", "c3560", "mx960"):
                t = SnmpTarget(key=community, address=address, community=community)
                oids = [ber.parse_oid(o) for o in ("1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.2.2.1.2.1",
                        "1.3.6.1.2.1.31.1.1.1.6.1", "1.3.6.1.2.1.2.2.1.10.1")]  # fmt: skip
                got = await client.get(t, oids)
                compare(list(got), cli("snmpget", "-v2c", "-c", community, str(address),
                                       *(ber.format_oid(o) for o in oids)))  # fmt: skip
                rows = await client.walk(t, IF_DESCR)
                assert len(rows) >= 2
                compare(
                    rows,
                    cli(
                        "snmpwalk", "-v2c", "-c", community, str(address), ber.format_oid(IF_DESCR)
                    ),
                )
    finally:
        sim.stop()


@pytest.fixture
def v3_snmpd() -> Iterator[int]:
    """A loopback snmpd with a v3 authPriv user (SHA / AES) and a v2c community."""
    require_root()
    workdir = Path(tempfile.mkdtemp(prefix="nms-test-snmpd-v3-"))
    port = free_udp_port()
    conf = workdir / "snmpd.conf"
    conf.write_text(
        'createUser ntuuser SHA "auth-secret-1" AES "priv-secret-1"\n'
        "rouser ntuuser priv\n"
        'createUser ntuauth SHA-256 "auth-secret-2"\n'
        "rouser ntuauth auth\n"
        "rocommunity public 127.0.0.0/8\n"
    )
    log = workdir / "snmpd.log"
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(workdir), "MIBS": ""}
    proc = subprocess.Popen(
        ["snmpd", "-f", "-C", "-c", str(conf), "-Lf", str(log), f"udp:127.0.0.1:{port}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while "NET-SNMP version" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline and proc.poll() is None, "snmpd did not start"
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        subprocess.run(["rm", "-rf", str(workdir)], check=False)


@pytest.mark.filterwarnings(PYSNMP_IMPORT_WARNINGS)
async def test_v3_authpriv_and_authnopriv_and_secrets_stay_out_of_logs(
    v3_snmpd: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    usm = UsmCredentials(
        user="ntuuser", auth_protocol=AuthProtocol.SHA, auth_key="auth-secret-1",
        priv_protocol=PrivProtocol.AES, priv_key="priv-secret-1",
    )  # fmt: skip
    t = SnmpTarget(key="v3", address=IPv4Address("127.0.0.1"), port=v3_snmpd,
                   version=SnmpVersion.V3, usm=usm,
                   wan=WanSelector(by="index", value=1))  # fmt: skip
    bad = SnmpTarget(key="v3bad", address=IPv4Address("127.0.0.1"), port=v3_snmpd,
                     version=SnmpVersion.V3, usm=UsmCredentials(
                         user="ntuuser", auth_key="wrong-secret-9", priv_protocol=PrivProtocol.AES,
                         priv_key="priv-secret-1"))  # fmt: skip
    async with SnmpClient(settings=FAST) as client:
        got = await client.get(t, [SYS_NAME, (*IF_DESCR, 1)])
        theirs = cli("snmpget", "-v3", "-l", "authPriv", "-u", "ntuuser", "-a", "SHA", "-A",
                     "auth-secret-1", "-x", "AES", "-X", "priv-secret-1", f"127.0.0.1:{v3_snmpd}",
                     *(ber.format_oid(o) for o, _ in got))  # fmt: skip
        compare(list(got), theirs)
        results = await SnmpPoller(client=client).poll([t, bad])
    assert results[0].reachable and results[0].sys_uptime is not None
    assert results[0].if_oper_status == 1 and results[0].counters_64bit
    # Same user name, other key, same cycle: the wrong key must not spoil the right one
    # (pysnmp keys its USM table by user name), and it is reported as "auth".
    assert not results[1].reachable and results[1].error == "auth", results[1]
    auth_only = SnmpTarget(key="v3auth", address=IPv4Address("127.0.0.1"), port=v3_snmpd,
                           version=SnmpVersion.V3, usm=UsmCredentials(
                               user="ntuauth", auth_protocol=AuthProtocol.SHA256,
                               auth_key="auth-secret-2"))  # fmt: skip
    async with SnmpClient(settings=FAST) as client:
        got = await client.get(auth_only, [SYS_NAME, SYS_UPTIME])
        assert norm(as_cli_text(got[0][1])) == norm(theirs[ber.format_oid(SYS_NAME)])
        assert isinstance(got[1][1], ber.TimeTicks)
        try:
            await client.get(bad, [SYS_NAME])
        except ProbeAuthError as exc:
            text = str(exc) + repr(exc)
        else:
            pytest.fail("a wrong USM key must raise ProbeAuthError")
    text += caplog.text + repr(t) + repr(bad) + repr(auth_only) + repr(results)
    for secret in ("auth-secret-1", "priv-secret-1", "wrong-secret-9", "auth-secret-2"):
        assert secret not in text


@pytest.mark.filterwarnings(PYSNMP_IMPORT_WARNINGS)
async def test_v3_engines_per_credential_set_are_bounded(
    v3_snmpd: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(usm_module, "_IDLE_ENGINES", 1)
    requester = usm_module.UsmRequester(timeout=0.5, retries=1)
    good = UsmCredentials(user="ntuuser", auth_key="auth-secret-1",
                          priv_protocol=PrivProtocol.AES, priv_key="priv-secret-1")  # fmt: skip
    auth_only = UsmCredentials(user="ntuauth", auth_protocol=AuthProtocol.SHA256,
                               auth_key="auth-secret-2")  # fmt: skip
    wrong = UsmCredentials(user="ntuuser", auth_key="wrong-secret-9",
                           priv_protocol=PrivProtocol.AES, priv_key="priv-secret-1")  # fmt: skip
    request = Request(type=PduType.GET, oids=(SYS_UPTIME,))

    def at(usm: UsmCredentials) -> SnmpTarget:
        return SnmpTarget(key="v3", address=IPv4Address("127.0.0.1"), port=v3_snmpd,
                          version=SnmpVersion.V3, usm=usm)  # fmt: skip

    try:
        for usm in (good, auth_only, good):
            response = await requester.execute(at(usm), request)
            assert isinstance(response.varbinds[0][1], ber.TimeTicks)
            assert requester.engines == 1  # idle engines beyond the cap are closed
        with pytest.raises(ProbeAuthError):
            await requester.execute(at(wrong), request)
        # concurrently, the wrong key does not spoil the right one (same user name)
        ok, bad = await asyncio.gather(
            requester.execute(at(good), request),
            requester.execute(at(wrong), request),
            return_exceptions=True,
        )
        assert isinstance(ok, Pdu) and isinstance(bad, ProbeAuthError)
    finally:
        requester.close()
