"""The trap listener against net-snmp's ``snmptrap`` / ``snmpinform`` on loopback.

Real senders, a real UDP socket on 127.0.0.1 (a free high port), numeric OIDs only
(no MIBs are installed). Garbage is sent from a plain socket in the test.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probes.observation import IPAddress
from probes.snmp import ber
from probes.snmp.pdu import Message, Pdu, PduType, TrapV1Pdu, Version, encode_message
from probes.snmp.transport import FakeTransport
from probes.snmp.traps import SNMP_TRAP_OID, TrapEvent, TrapListener, TrapSettings

KNOWN = IPv4Address("127.0.0.1")
STRANGER = "127.0.0.2"  # a loopback source the inventory does not know
COMMUNITY = "trap-secret"
WAIT = 5.0  # seconds for a datagram to be processed (loopback: milliseconds)
TRAPS = "1.3.6.1.6.3.1.1.5"
IF_INDEX = "1.3.6.1.2.1.2.2.1.1"

pytestmark = pytest.mark.skipif(
    shutil.which("snmptrap") is None or shutil.which("snmpinform") is None,
    reason="net-snmp CLI tools (Debian package snmp) are not installed",
)


def lookup(address: IPAddress) -> tuple[str, str] | None:
    return ("ntu-1", COMMUNITY) if address == KNOWN else None


@dataclass
class Harness:
    listener: TrapListener
    events: list[TrapEvent] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.listener.local_port}"

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait until ``condition()`` holds (checked after every datagram)."""
        async with asyncio.timeout(WAIT):
            while not condition():
                self.changed.clear()
                await self.changed.wait()

    async def received(self, n: int) -> None:
        await self.until(lambda: self.listener.stats.received >= n)


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    events: list[TrapEvent] = []
    changed = asyncio.Event()

    def on_event(event: TrapEvent) -> None:
        events.append(event)

    listener = TrapListener(
        lookup=lookup, on_event=on_event, settings=TrapSettings(host="127.0.0.1", port=0)
    )
    handle = listener.handle

    def counting_handle(data: bytes, source: tuple[str, int]) -> TrapEvent | None:
        try:
            return handle(data, source)
        finally:
            changed.set()

    listener.handle = counting_handle  # type: ignore[method-assign]
    async with listener:
        yield Harness(listener=listener, events=events, changed=changed)


async def net_snmp(tool: str, *args: str) -> int:
    """Run snmptrap / snmpinform without blocking the loop the listener runs in."""
    proc = await asyncio.create_subprocess_exec(
        tool,
        *args,
        env={**os.environ, "MIBS": "", "MIBDIRS": "/nonexistent"},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(WAIT + 5):
            return await proc.wait()
    except BaseException:
        proc.kill()
        await proc.wait()
        raise


def send_raw(data: bytes, port: int, source: str = "127.0.0.1") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.sendto(data, ("127.0.0.1", port))


def v2_trap(kind: int, if_index: int | None = None, community: str = COMMUNITY) -> bytes:
    varbinds: list[tuple[ber.Oid, ber.Value]] = [
        ((1, 3, 6, 1, 2, 1, 1, 3, 0), ber.TimeTicks(1234)),
        (SNMP_TRAP_OID, ber.ObjectIdentifier((*ber.parse_oid(TRAPS), kind))),
    ]
    if if_index is not None:
        varbinds.append(((*ber.parse_oid(IF_INDEX), if_index), ber.Integer(if_index)))
    pdu = Pdu(type=PduType.TRAP_V2, request_id=7, varbinds=tuple(varbinds))
    return encode_message(Message(version=Version.V2C, community=community.encode(), pdu=pdu))


async def test_v2c_and_v1_traps_from_net_snmp_are_recognised(harness: Harness) -> None:
    to = harness.address
    base = ["-c", COMMUNITY, to]
    sends = [
        ["-v2c", *base, "", f"{TRAPS}.3", f"{IF_INDEX}.3", "i", "3"],  # linkDown
        ["-v2c", *base, "", f"{TRAPS}.4", f"{IF_INDEX}.3", "i", "3"],  # linkUp
        ["-v2c", *base, "", f"{TRAPS}.1"],  # coldStart
        ["-v2c", *base, "", f"{TRAPS}.2"],  # warmStart
        # v1: enterprise agent-addr generic-trap specific-trap uptime [varbinds]
        ["-v1", *base, "1.3.6.1.4.1.8072", "127.0.0.1", "2", "0", "", f"{IF_INDEX}.5", "i", "5"],
        ["-v1", *base, "1.3.6.1.4.1.8072", "127.0.0.1", "3", "0", "", f"{IF_INDEX}.5", "i", "5"],
        ["-v1", *base, "1.3.6.1.4.1.8072", "127.0.0.1", "0", "0", ""],
        ["-v1", *base, "1.3.6.1.4.1.8072", "127.0.0.1", "1", "0", ""],
    ]
    for n, args in enumerate(sends, start=1):
        assert await net_snmp("snmptrap", *args) == 0
        await harness.received(n)  # one at a time: UDP order is not guaranteed
    got = [(e.kind, e.if_index, e.inform) for e in harness.events]
    assert got == [
        ("linkDown", 3, False),
        ("linkUp", 3, False),
        ("coldStart", None, False),
        ("warmStart", None, False),
        ("linkDown", 5, False),
        ("linkUp", 5, False),
        ("coldStart", None, False),
        ("warmStart", None, False),
    ]
    assert all(e.key == "ntu-1" and e.source == KNOWN for e in harness.events)
    assert all(e.at.tzinfo is not None for e in harness.events)
    stats = harness.listener.stats
    assert (stats.received, stats.events, stats.malformed) == (8, 8, 0)


async def test_inform_is_acknowledged(harness: Harness) -> None:
    # snmpinform exits 0 only when it got the Response (RFC 3416 section 4.2.7).
    args = ["-v2c", "-c", COMMUNITY, "-t", "1", "-r", "1", harness.address, ""]
    assert await net_snmp("snmpinform", *args, f"{TRAPS}.3", f"{IF_INDEX}.7", "i", "7") == 0
    assert [(e.kind, e.if_index, e.inform) for e in harness.events] == [("linkDown", 7, True)]
    # An inform of a kind we do not act on is still acknowledged, but makes no event.
    assert await net_snmp("snmpinform", *args, "1.3.6.1.4.1.8072.9.9") == 0
    stats = harness.listener.stats
    assert stats.informs_acked == 2 and stats.events == 1 and stats.ignored == 1


async def test_unknown_source_and_wrong_community_are_counted_and_dropped(
    harness: Harness,
) -> None:
    linkdown = [f"{TRAPS}.3", f"{IF_INDEX}.3", "i", "3"]
    wrong = ["-v2c", "-c", "not-the-community", harness.address, ""]
    assert await net_snmp("snmptrap", *wrong, *linkdown) == 0
    await harness.received(1)
    stranger = ["-v2c", "-c", COMMUNITY, f"--clientaddr={STRANGER}", harness.address, ""]
    assert await net_snmp("snmptrap", *stranger, *linkdown) == 0
    await harness.received(2)
    # An inform with the wrong community is not acknowledged: snmpinform gives up.
    quick = ["-t", "0.3", "-r", "0"]
    assert await net_snmp("snmpinform", *quick, *wrong, *linkdown) != 0
    stats = harness.listener.stats
    assert stats.bad_community == 2 and stats.unknown_source == 1
    assert stats.events == 0 and stats.informs_acked == 0 and not harness.events
    # v1 from the wrong source, raw: the UDP source decides, not agent-addr.
    send_raw(v2_trap(3, 3), harness.listener.local_port, source=STRANGER)
    await harness.received(stats.received + 1)
    assert stats.unknown_source == 2 and not harness.events


async def test_garbage_is_counted_as_malformed_and_the_listener_keeps_working(
    harness: Harness,
) -> None:
    port = harness.listener.local_port
    good = v2_trap(3, 4)
    rng = random.Random(4)
    garbage = [rng.randbytes(rng.randint(1, 300)) for _ in range(30)]
    garbage += [good[:cut] for cut in range(0, len(good), 3)]  # truncated BER
    garbage += [b"\x30\x84\xff\xff\xff\xff", b"\x30\x00", b"\x00" * 1400]  # over-long, empty
    # A GetRequest sent to the trap port is no notification either.
    get = Message(
        version=Version.V2C,
        community=COMMUNITY.encode(),
        pdu=Pdu(type=PduType.GET, request_id=1, varbinds=(((1, 3, 6, 1), ber.NULL_VALUE),)),
    )
    garbage.append(encode_message(get))
    for data in garbage:
        send_raw(data, port)
    await harness.received(len(garbage))
    stats = harness.listener.stats
    # Random bytes could, in principle, form a valid message; with this seed none do.
    assert stats.malformed == len(garbage) and not stats.events
    send_raw(good, port)
    assert await net_snmp("snmptrap", "-v2c", "-c", COMMUNITY, harness.address, "",
                          f"{TRAPS}.1") == 0  # fmt: skip
    await harness.until(lambda: len(harness.events) == 2)
    assert sorted(e.kind for e in harness.events) == ["coldStart", "linkDown"]
    v1 = TrapV1Pdu(
        enterprise=(1, 3, 6, 1, 4, 1, 8072),
        agent_addr=bytes(4),
        generic_trap=3,
        specific_trap=0,
        timestamp=5,
    )
    send_raw(
        encode_message(Message(version=Version.V1, community=COMMUNITY.encode(), pdu=v1)), port
    )
    await harness.until(lambda: len(harness.events) == 3)
    assert harness.events[-1].kind == "linkUp"


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400), known=st.booleans())
def test_handle_never_raises_on_arbitrary_bytes(data: bytes, known: bool) -> None:
    listener = TrapListener(
        lookup=lookup,
        on_event=lambda event: None,
        settings=TrapSettings(host="127.0.0.1", port=0),
        transport=FakeTransport(responder=lambda data, address: []),
    )
    source = ("127.0.0.1" if known else STRANGER, 40000)
    listener.handle(data, source)
    stats = listener.stats
    outcomes = (
        stats.malformed + stats.unknown_source + stats.bad_community + stats.events + stats.ignored
    )
    assert stats.received == 1 and outcomes == 1


def test_a_failing_consumer_does_not_stop_the_listener(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(event: TrapEvent) -> None:
        raise RuntimeError("consumer bug")

    listener = TrapListener(
        lookup=lookup,
        on_event=broken,
        settings=TrapSettings(host="127.0.0.1", port=0),
        transport=FakeTransport(responder=lambda data, address: []),
    )
    event = listener.handle(v2_trap(3, 9), ("127.0.0.1", 40000))
    assert event is not None and event.if_index == 9 and listener.stats.events == 1
    assert "consumer failed" in caplog.text and COMMUNITY not in caplog.text
