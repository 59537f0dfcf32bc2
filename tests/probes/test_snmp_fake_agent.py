"""A broken agent on 127.0.0.1: bad replies are counted, never fatal.

The agent is a real UDP socket in the test, so the client's real transport, reader
loop and matching are exercised. It answers each request with a scripted burst:
garbage, truncated BER, a wrong request-id, a wrong community, a non-Response PDU,
replies from the wrong source (another port, another loopback address), and then,
when the script says so, the good reply.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address

import pytest

from probes.errors import (
    LocalProtocolError,
    ProbeAuthError,
    ProbeTimeoutError,
    ProbeUnreachableError,
    RemoteProtocolError,
    snmp_error_for,
)
from probes.snmp import ber
from probes.snmp.client import ClientSettings, SnmpClient
from probes.snmp.pdu import Message, Pdu, PduType, decode_message, encode_message
from probes.snmp.poller import SnmpPoller, error_name
from probes.snmp.target import SnmpTarget, WanSelector

SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SETTINGS = ClientSettings(timeout=0.2, retries=2, total_timeout=0.8, bind_v4="127.0.0.1")

Address = tuple[str, int]
Script = Callable[[Message, bytes], list[tuple[bytes, str]]]  # -> (datagram, "from")


def response(request: Message, *, request_id: int | None = None, community: bytes | None = None,
             pdu_type: PduType = PduType.RESPONSE) -> bytes:  # fmt: skip
    """The answer an honest agent would give (sysUpTime = 4242 for every OID)."""
    assert isinstance(request.pdu, Pdu)
    varbinds = tuple((oid, ber.TimeTicks(4242)) for oid, _ in request.pdu.varbinds)
    pdu = Pdu(
        type=pdu_type,
        request_id=request.pdu.request_id if request_id is None else request_id,
        varbinds=varbinds,
    )
    return encode_message(
        Message(
            version=request.version,
            community=request.community if community is None else community,
            pdu=pdu,
        )
    )


def bad_replies(request: Message, raw: bytes) -> list[tuple[bytes, str]]:
    """Everything a broken or hostile agent might send instead of the answer."""
    assert isinstance(request.pdu, Pdu)
    good = response(request)
    return [
        (b"\x00\xffnot snmp at all", "agent"),  # malformed
        (good[: len(good) // 2], "agent"),  # truncated BER: malformed
        (good + b"\x00", "agent"),  # trailing garbage: malformed
        (response(request, request_id=(request.pdu.request_id + 1) & 0x7FFFFFFF), "agent"),
        (response(request, community=b"someone-else"), "agent"),
        (response(request, pdu_type=PduType.GET), "agent"),  # not a Response
        (raw, "agent"),  # our own request echoed back
        (good, "other-port"),  # right id and community, wrong source port
        (good, "other-address"),  # right id and community, wrong source address
    ]


def bad_then_good(request: Message, raw: bytes) -> list[tuple[bytes, str]]:
    return [*bad_replies(request, raw), (response(request), "agent")]


MALFORMED_PER_BURST = 3
UNMATCHED_PER_BURST = 6


@dataclass
class FakeAgent:
    """A UDP agent on 127.0.0.1 that answers with ``script``; spoofers on the side."""

    script: Script
    sock: socket.socket
    other_port: socket.socket
    other_address: socket.socket
    requests: list[Message] = field(default_factory=list)

    @property
    def address(self) -> Address:
        address: Address = self.sock.getsockname()
        return address

    def on_readable(self) -> None:
        while True:
            try:
                raw, peer = self.sock.recvfrom(65535)
            except BlockingIOError:
                return
            request = decode_message(raw)
            self.requests.append(request)
            senders = {
                "agent": self.sock,
                "other-port": self.other_port,
                "other-address": self.other_address,
            }
            for data, sender in self.script(request, raw):
                senders[sender].sendto(data, peer)


@pytest.fixture
async def agent() -> AsyncIterator[FakeAgent]:
    socks = []
    for host in ("127.0.0.1", "127.0.0.1", "127.0.0.2"):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind((host, 0))
        socks.append(sock)
    fake = FakeAgent(script=bad_replies, sock=socks[0], other_port=socks[1], other_address=socks[2])
    loop = asyncio.get_running_loop()
    loop.add_reader(fake.sock.fileno(), fake.on_readable)
    try:
        yield fake
    finally:
        loop.remove_reader(fake.sock.fileno())
        for sock in socks:
            sock.close()


def target(agent: FakeAgent, key: str = "ntu-fake") -> SnmpTarget:
    host, port = agent.address
    return SnmpTarget(key=key, address=IPv4Address(host), port=port, community="public")


async def test_bad_replies_then_the_good_one_succeeds(agent: FakeAgent) -> None:
    agent.script = bad_then_good
    async with SnmpClient(settings=SETTINGS) as client:
        got = await client.get(target(agent), [SYS_UPTIME])
        assert got == ((SYS_UPTIME, ber.TimeTicks(4242)),)
        # The good reply is the burst's last datagram, and loopback keeps the order.
        stats = client.stats
        assert len(agent.requests) == 1 and stats.retransmissions == 0
        assert stats.malformed == MALFORMED_PER_BURST
        assert stats.unmatched == UNMATCHED_PER_BURST
        assert stats.responses == 1 and stats.timeouts == 0


async def test_only_bad_replies_time_out_and_the_client_keeps_working(agent: FakeAgent) -> None:
    async with SnmpClient(settings=SETTINGS) as client:
        started = time.monotonic()
        with pytest.raises(ProbeTimeoutError) as caught:
            await client.get(target(agent), [SYS_UPTIME])
        elapsed = time.monotonic() - started
        # retries=2: three attempts of 0.2 s, within total_timeout.
        assert 0.5 < elapsed < SETTINGS.total_timeout + 0.3
        assert "public" not in str(caught.value)
        attempts = len(agent.requests)
        assert attempts == 3 and client.stats.retransmissions == 2
        assert client.stats.malformed == MALFORMED_PER_BURST * attempts
        assert client.stats.unmatched == UNMATCHED_PER_BURST * attempts
        assert client.stats.timeouts == 1 and client.stats.responses == 0
        # The same client, the agent mended: the answer comes through.
        agent.script = lambda request, raw: [(response(request), "agent")]
        got = await client.get(target(agent), [SYS_UPTIME])
        assert got[0][1] == ber.TimeTicks(4242)


async def test_good_reply_to_a_retransmission_after_garbage(agent: FakeAgent) -> None:
    """The first attempt gets only garbage; the retransmission gets the answer."""

    def script(request: Message, raw: bytes) -> list[tuple[bytes, str]]:
        bad = bad_replies(request, raw)
        return bad if len(agent.requests) == 1 else [*bad, (response(request), "agent")]

    agent.script = script
    async with SnmpClient(settings=SETTINGS) as client:
        got = await client.get(target(agent), [SYS_UPTIME])
        assert got[0][1] == ber.TimeTicks(4242)
        assert client.stats.retransmissions == 1 and client.stats.timeouts == 0


async def test_poller_over_a_broken_agent_counts_and_reports(agent: FakeAgent) -> None:
    """The poller never crashes: garbage-only agent -> unreachable with "timeout"."""
    async with SnmpClient(settings=SETTINGS) as client:
        poller = SnmpPoller(client=client)
        (result,) = await poller.poll([target(agent)])
        assert not result.reachable and result.error == "timeout"
        assert client.stats.malformed > 0 and client.stats.unmatched > 0
        agent.script = bad_then_good
        (result,) = await poller.poll([target(agent)])
        assert result.reachable and result.sys_uptime == 4242 and result.error is None


async def test_an_answer_to_other_oids_is_a_protocol_error_not_a_crash(agent: FakeAgent) -> None:
    """A decodable Response with the wrong varbinds: the NTU answered, wrongly."""

    def short(request: Message, raw: bytes) -> list[tuple[bytes, str]]:
        assert isinstance(request.pdu, Pdu)
        pdu = Pdu(type=PduType.RESPONSE, request_id=request.pdu.request_id, varbinds=())
        return [(encode_message(Message(version=request.version, community=b"public", pdu=pdu)),
                 "agent")]  # fmt: skip

    agent.script = short
    wan = SnmpTarget(key="wan", address=IPv4Address("127.0.0.1"), port=agent.address[1],
                     community="public", wan=WanSelector(by="index", value=2))  # fmt: skip
    async with SnmpClient(settings=SETTINGS) as client:
        results = await SnmpPoller(client=client).poll([target(agent), wan])
    assert [(r.reachable, r.error, r.sys_uptime) for r in results] == [(True, "protocol", None)] * 2


def test_error_names() -> None:
    assert error_name(ProbeTimeoutError("timeout")) == "timeout"
    assert error_name(ProbeAuthError("auth")) == "auth"
    assert error_name(ProbeUnreachableError("EHOSTUNREACH")) == "EHOSTUNREACH"
    assert error_name(snmp_error_for(2)) == "noSuchName"
    assert error_name(RemoteProtocolError("bad")) == "protocol"
    # our own bug says nothing about the NTU (and the poller reports it unreachable)
    assert error_name(LocalProtocolError("flow failed")) == "internal"
