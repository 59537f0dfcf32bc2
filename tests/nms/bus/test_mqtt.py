"""nms.bus.mqtt against a real Mosquitto: delivery, rejects, dedupe, outages, sessions."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from nms.bus.batch import PingBatch, SnmpBatch
from nms.bus.inprocess import Bus, InProcessBus
from nms.bus.mqtt import BusStats, MqttBus, MqttBusSettings, topic_for
from nms.bus.mqtt.intake import Seen
from nms.bus.wire import (
    MAX_MESSAGE_BYTES,
    CaseChange,
    Heartbeat,
    Message,
    NtuStateChange,
    Payload,
    SkipSet,
    WireError,
    decode,
    encode,
)
from probes.observation import PingResult, SnmpResult
from tests.conftest import require
from tests.mosquitto import BINARY, Mosquitto, mosquitto_fixture  # noqa: F401 - "mosquitto"

T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
PREFIX = "nms/v1"
OBSERVATIONS = ["probes/+/ping", "probes/+/snmp"]


def settings(broker: Mosquitto, **changes: Any) -> MqttBusSettings:
    fast: dict[str, Any] = {"reconnect_base": 0.05, "reconnect_cap": 0.2, "timeout": 3.0}
    return MqttBusSettings(url=broker.url, **(fast | changes))


def ping(key: str = "ntu-1", address: str = "192.0.2.7") -> PingResult:
    return PingResult(key, ipaddress.ip_address(address), T0, 3, 2, (0.001, 0.0025), None)


def snmp(key: str = "ntu-1") -> SnmpResult:
    return SnmpResult(
        key,
        ipaddress.ip_address("2001:db8::1"),
        T0,
        reachable=True,
        sys_uptime=12345,
        if_index=2,
        if_oper_status=1,
        if_admin_status=1,
        in_octets=2**64 - 1,
        out_octets=0,
        counters_64bit=True,
    )


@contextlib.asynccontextmanager
async def running(*buses: MqttBus) -> AsyncIterator[None]:
    """Run the buses' ``run()`` for the block; a crash of one fails the test."""
    tasks = [asyncio.create_task(bus.run(), name=f"run-{i}") for i, bus in enumerate(buses)]
    try:
        yield
    finally:
        # One cancel stops a bus, within DISCONNECT_WAIT (see nms.bus.mqtt.session:
        # no wait_for can swallow it): fail fast, not at pytest's 300 s timeout.
        for task in tasks:
            task.cancel()
        _, pending = await asyncio.wait(tasks, timeout=5)
        assert not pending, f"run() did not stop: {pending}"
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if not isinstance(result, asyncio.CancelledError):
                raise AssertionError(f"run() ended with {result!r}")


async def eventually(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - polling the bus's counters is the point
            await asyncio.sleep(0.01)


async def take(bus: MqttBus, count: int, seconds: float = 5.0) -> list[Message]:
    got: list[Message] = []
    if count == 0:
        return got
    async with asyncio.timeout(seconds), contextlib.aclosing(bus.received()) as messages:
        async for message in messages:
            got.append(message)
            if len(got) == count:
                break
    return got


async def nothing_more(bus: MqttBus, wait: float = 0.3) -> None:
    await asyncio.sleep(wait)
    assert bus._inbox.empty(), f"unexpected: {bus._inbox.get_nowait()}"


@contextlib.asynccontextmanager
async def raw_client(broker: Mosquitto, **options: Any) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(
        "127.0.0.1", broker.port, protocol=aiomqtt.ProtocolVersion.V5, **options
    ) as client:
        yield client


# -- delivery ------------------------------------------------------------------------------


async def test_every_kind_goes_through_the_broker(mosquitto: Mosquitto) -> None:
    sender = MqttBus(settings(mosquitto), client_id="sender", source="probe-1of1-aa")
    detector = MqttBus(
        settings(mosquitto), client_id="detector", source="detector-bb", subscribe=["#"]
    )
    reader = MqttBus(
        settings(mosquitto), client_id="reader", source="reader-cc", subscribe=OBSERVATIONS
    )
    pings = PingBatch((ping(), ping("ntu-2", "2001:db8::2")))
    snmps = SnmpBatch((snmp(), snmp("ntu-2")))
    payloads: list[Payload] = [
        pings,
        snmps,
        Heartbeat("1/1", True, 2, 2, 7, 1, 0, 0),
        NtuStateChange("ntu-1", "down", "suspect", T0, T0, "CASE-2026-000001"),
        CaseChange("CASE-2026-000001", 9, "opened", "open", "P1", "ntu-1", "acme", T0),
        SkipSet(frozenset({"ntu-3", "ntu-4"}), T0),
    ]
    async with running(sender, detector, reader):
        await eventually(lambda: detector.stats.connected and reader.stats.connected)
        await sender.publish(pings)
        await sender.publish(snmps)
        await sender.publish(PingBatch(()))  # ignored, as by InProcessBus
        for payload in payloads[2:]:
            await sender.send(payload, retain=isinstance(payload, NtuStateChange | SkipSet))
        async with asyncio.timeout(5):
            await sender.flush()
        got = await take(detector, len(payloads))
        async with asyncio.timeout(5), contextlib.aclosing(reader.batches()) as batches:
            observed = [await anext(batches), await anext(batches)]

    assert sorted((m.payload for m in got), key=repr) == sorted(payloads, key=repr)
    assert {m.source for m in got} == {"probe-1of1-aa"}
    assert sorted(m.seq for m in got) == [1, 2, 3, 4, 5, 6]
    assert observed == [pings, snmps]
    kinds = {"ping": 1, "snmp": 1, "heartbeat": 1, "ntu_state": 1, "case": 1, "skip": 1}
    assert sender.stats.published == kinds and sender.stats.buffered == 0
    assert detector.stats.received == kinds
    assert reader.stats.received == {"ping": 1, "snmp": 1}
    assert not detector.stats.rejected and detector.stats.duplicates == 0


async def test_topics_retain_and_a_late_subscriber(mosquitto: Mosquitto) -> None:
    """ntu_state and skip are retained: a subscriber that comes later gets them."""
    sender = MqttBus(settings(mosquitto), client_id="sender", source="detector-aa")
    async with running(sender):
        await sender.send(NtuStateChange("ntu-1", "down", "up", T0, T0, None), retain=True)
        await sender.send(SkipSet(frozenset({"ntu-9"}), T0), retain=True)
        await sender.send(CaseChange("CASE-1", 1, "opened", "open", "P1", None, None, T0))
        await sender.send(Heartbeat("1/2", True, 0, 0, 0, 0, 0, 0))
        async with asyncio.timeout(5):
            await sender.flush()
    async with raw_client(mosquitto) as late:
        await late.subscribe(f"{PREFIX}/#", qos=1)
        got: dict[str, aiomqtt.Message] = {}
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                async for raw in late.messages:
                    got[raw.topic.value] = raw
    assert sorted(got) == [f"{PREFIX}/control/skip", f"{PREFIX}/detector/ntus/ntu-1"]
    assert all(m.retain and m.qos == 1 for m in got.values())
    assert isinstance(decode(got[f"{PREFIX}/control/skip"].payload).payload, SkipSet)


def test_topic_for() -> None:
    def message(payload: Payload, source: str = "probe-2of4-x") -> Message:
        return Message(source=source, seq=1, sent_at=T0, payload=payload)

    assert topic_for("p", message(PingBatch((ping(),)))) == "p/probes/probe-2of4-x/ping"
    assert topic_for("p", message(SnmpBatch((snmp(),)))) == "p/probes/probe-2of4-x/snmp"
    beat = Heartbeat("2/4", True, 0, 0, 0, 0, 0, 0)
    assert topic_for("p", message(beat)) == "p/probes/probe-2of4-x/heartbeat"
    # A probe worker's sender: its user name at the broker, which the ACL lets it use.
    assert topic_for("p", message(beat), "probe-2of4") == "p/probes/probe-2of4/heartbeat"
    assert topic_for("p", message(beat), "a/b#") == "p/probes/a_b_/heartbeat"
    state = NtuStateChange("a/b+c#", "up", "down", T0, None, None)
    assert topic_for("p", message(state)) == "p/detector/ntus/a_b_c_"
    case = CaseChange("CASE-2026-000001", 1, "opened", "open", "P1", None, None, T0)
    assert topic_for("p", message(case)) == "p/cases/CASE-2026-000001"
    assert topic_for("p", message(SkipSet(frozenset(), T0))) == "p/control/skip"


def test_both_buses_satisfy_the_protocol() -> None:
    def accepts(bus: Bus) -> Bus:
        return bus

    accepts(InProcessBus())
    accepts(MqttBus(MqttBusSettings(url="mqtt://127.0.0.1:1"), client_id="c", source="s"))


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        ({"url": "http://host"}, r"expected mqtt\[s\]://"),
        ({"url": "mqtt://"}, "no host"),
        ({"url": "mqtt://host:99999"}, "out of range"),
        ({"url": "mqtt://host/path"}, "unexpected path"),
        ({"topic_prefix": "nms/+"}, "topic_prefix"),
        ({"topic_prefix": "nms/v1/"}, "topic_prefix"),
        ({"buffer_batches": 0}, "buffer_batches"),
        ({"reconnect_base": 2.0, "reconnect_cap": 1.0}, "reconnect_base"),
        ({"keepalive": 0}, "keepalive"),
        ({"session_expiry": -1}, "session_expiry"),
    ],
)
def test_settings_are_validated(changes: dict[str, Any], text: str) -> None:
    with pytest.raises(ValueError, match=text):
        MqttBusSettings(**({"url": "mqtt://127.0.0.1"} | changes))


def test_url_credentials_are_unquoted() -> None:
    bus = MqttBus(
        MqttBusSettings(url="mqtt://us%40er:p%3Ass@[::1]:1884"), client_id="c", source="s"
    )
    assert (bus._broker.host, bus._broker.port) == ("::1", 1884)
    assert (bus._broker.username, bus._broker.password) == ("us@er", "p:ss")


async def test_a_batch_too_big_for_one_message_is_split() -> None:
    bus = MqttBus(MqttBusSettings(url="mqtt://127.0.0.1:1"), client_id="c", source="s")
    batch = tuple(ping(f"ntu-{i:05}-" + "x" * 200) for i in range(20_000))  # ~5 MB encoded
    await bus.publish(PingBatch(batch))
    queued = bus._outbox.queued()
    parts = [decode(entry.data) for entry in queued]
    assert len(parts) >= 2 and all(len(e.data) <= MAX_MESSAGE_BYTES for e in queued)
    assert tuple(r for m in parts for r in m.payload.results) == batch  # type: ignore[union-attr]
    with pytest.raises(WireError, match="ping\\[1\\]: a SnmpResult in a ping batch"):
        await bus.publish(PingBatch((ping(), snmp())))  # type: ignore[arg-type]


# -- what the receiver refuses ----------------------------------------------------------


async def test_bad_messages_are_counted_and_skipped(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    detector = MqttBus(
        settings(mosquitto), client_id="detector", source="detector-aa", subscribe=["probes/#"]
    )
    valid = encode(Message("probe-1of1-x", 1, T0, PingBatch((ping(),))))
    field = valid.replace(b'"192.0.2.7"', b'"999.1.1.1"')
    bad = [
        b"not json",
        b"\xff\xfe",
        valid.replace(b'"v":1', b'"v":2'),
        valid.replace(b'"k":"ping"', b'"k":"pong"'),
        field,
    ]
    topic = f"{PREFIX}/probes/probe-1of1-x/ping"
    caplog.set_level(logging.WARNING, logger="nms.bus")
    async with running(detector):
        await eventually(lambda: detector.stats.connected)
        async with raw_client(mosquitto) as raw:
            for payload in [*bad, valid]:
                await raw.publish(topic, payload, qos=1)
        got = await take(detector, 1)
        await nothing_more(detector, 0.1)
    assert [m.payload for m in got] == [PingBatch((ping(),))]
    assert detector.stats.rejected == {"malformed": 2, "version": 1, "kind": 1, "field": 1}
    assert detector.stats.received == {"ping": 1}
    logged = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    # One line per reason: the second malformed one falls in the rate limit.
    assert len(logged) == 4, logged
    assert any(
        topic in line and "(field)" in line and "ping[0].address: '999.1.1.1'" in line
        for line in logged
    ), logged


async def test_a_duplicate_is_delivered_once(mosquitto: Mosquitto) -> None:
    detector = MqttBus(
        settings(mosquitto), client_id="detector", source="detector-aa", subscribe=OBSERVATIONS
    )
    first = encode(Message("probe-1of1-x", 1, T0, PingBatch((ping(),))))
    second = encode(Message("probe-1of1-x", 2, T0, PingBatch((ping("ntu-2"),))))
    other_source = encode(Message("probe-1of1-y", 1, T0, PingBatch((ping("ntu-3"),))))
    async with running(detector):
        await eventually(lambda: detector.stats.connected)
        async with raw_client(mosquitto) as raw:
            for payload in [first, first, second, first, other_source]:
                await raw.publish(f"{PREFIX}/probes/x/ping", payload, qos=1)
        got = await take(detector, 3)
        await nothing_more(detector, 0.1)
    assert [(m.source, m.seq) for m in got] == [
        ("probe-1of1-x", 1),
        ("probe-1of1-x", 2),
        ("probe-1of1-y", 1),
    ]
    assert detector.stats.duplicates == 2
    assert detector.stats.received == {"ping": 3}


def test_dedupe_memory_is_bounded() -> None:
    seen = Seen(per_source=3, sources=2)
    assert [seen.add("a", n) for n in (1, 2, 1, 3, 4)] == [True, True, False, True, True]
    assert seen.add("a", 1)  # forgotten: only the last 3 seqs are kept
    assert not seen.add("a", 4)
    assert seen.add("b", 9) and seen.add("c", 9)  # a is the least recently seen source
    assert seen.add("a", 4)
    assert not seen.add("c", 9)
    # Retained messages arrive in any order: a low seq after a high one is still new.
    assert seen.add("d", 500) and seen.add("d", 5)


# -- outages -------------------------------------------------------------------------------


async def test_a_broker_restart_loses_nothing(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    sender = MqttBus(settings(mosquitto), client_id="sender", source="probe-1of1-aa")
    detector = MqttBus(
        settings(mosquitto),
        client_id="detector",
        source="detector-bb",
        subscribe=OBSERVATIONS,
        persistent=True,
    )
    caplog.set_level(logging.INFO, logger="nms.bus")
    async with running(sender, detector):
        await eventually(lambda: sender.stats.connected and detector.stats.connected)
        for i in range(3):
            await sender.publish(PingBatch((ping(f"before-{i}"),)))
        before = await take(detector, 3)

        mosquitto.stop()
        await eventually(lambda: not sender.stats.connected and not detector.stats.connected)
        for i in range(20):
            await sender.publish(PingBatch((ping(f"during-{i}"),)))
            assert sender.stats.buffered == i + 1
        await asyncio.sleep(0.3)  # several reconnect attempts fail meanwhile
        assert sender.stats.buffered == 20 and sender.stats.dropped == 0
        mosquitto.start()

        during = await take(detector, 20)
        await eventually(lambda: sender.stats.buffered == 0)
        await nothing_more(detector)
        for stats in (sender.stats, detector.stats):
            assert (stats.connects, stats.disconnects) == (2, 1)
    assert [m.payload.results[0].key for m in before] == [f"before-{i}" for i in range(3)]  # type: ignore[union-attr]
    assert [m.payload.results[0].key for m in during] == [f"during-{i}" for i in range(20)]  # type: ignore[union-attr]
    assert sender.stats.published["ping"] == 23
    lost = [r for r in caplog.records if "lost the broker" in r.getMessage()]
    assert len(lost) == 2  # once per bus for the whole outage, not once per attempt
    assert all(r.levelno == logging.WARNING for r in lost)


async def test_a_broker_restart_under_load_delivers_everything_once(mosquitto: Mosquitto) -> None:
    """Messages in flight when the broker goes are sent again; dedupe drops any copy."""
    sender = MqttBus(settings(mosquitto), client_id="sender", source="probe-1of1-aa")
    detector = MqttBus(
        settings(mosquitto),
        client_id="detector",
        source="detector-bb",
        subscribe=OBSERVATIONS,
        persistent=True,
    )
    total = 300

    async def produce() -> None:
        for i in range(total):
            await sender.publish(PingBatch((ping(f"ntu-{i}"),)))
            await asyncio.sleep(0.002)

    async with running(sender, detector):
        await eventually(lambda: sender.stats.connected and detector.stats.connected)
        producer = asyncio.create_task(produce())
        await eventually(lambda: sender.stats.published["ping"] >= 50)
        mosquitto.stop()
        await asyncio.sleep(0.2)
        mosquitto.start()
        await producer
        got = await take(detector, total, seconds=10)
        await nothing_more(detector)
    assert [m.payload.results[0].key for m in got] == [f"ntu-{i}" for i in range(total)]  # type: ignore[union-attr]
    assert sender.stats.dropped == 0


async def test_the_buffer_drops_the_oldest_when_full(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    sender = MqttBus(
        settings(mosquitto, buffer_batches=5), client_id="sender", source="probe-1of1-aa"
    )
    detector = MqttBus(
        settings(mosquitto),
        client_id="detector",
        source="detector-bb",
        subscribe=OBSERVATIONS,
        persistent=True,
    )
    async with running(sender, detector):
        await eventually(lambda: sender.stats.connected and detector.stats.connected)
        mosquitto.stop()
        await eventually(lambda: not sender.stats.connected)
        for i in range(8):
            await sender.publish(PingBatch((ping(f"ntu-{i}"),)))
        assert (sender.stats.buffered, sender.stats.dropped) == (5, 3)
        full = [r for r in caplog.records if "outgoing buffer full" in r.getMessage()]
        assert len(full) == 1  # once per burst of drops
        mosquitto.start()
        got = await take(detector, 5)
        await nothing_more(detector)
    assert [m.payload.results[0].key for m in got] == [f"ntu-{i}" for i in range(3, 8)]  # type: ignore[union-attr]
    assert sender.stats.buffered == 0 and sender.stats.published["ping"] == 5


async def test_a_bus_started_before_the_broker_connects_when_it_comes(tmp_path: Path) -> None:
    require(BINARY.exists(), "needs the mosquitto broker (apt install mosquitto)")
    broker = Mosquitto(tmp_path)
    sender = MqttBus(settings(broker), client_id="sender", source="probe-1of1-aa")
    detector = MqttBus(
        settings(broker), client_id="detector", source="detector-bb", subscribe=OBSERVATIONS
    )
    try:
        async with running(sender, detector):
            await sender.send(Heartbeat("1/1", True, 0, 0, 0, 0, 0, 0))
            await asyncio.sleep(0.3)
            assert sender.stats.connects == 0 and sender.stats.buffered == 1
            broker.start()
            await eventually(lambda: sender.stats.connected and detector.stats.connected)
            await sender.publish(PingBatch((ping(),)))
            got = await take(detector, 1)
    finally:
        broker.stop()
    assert got[0].payload == PingBatch((ping(),))


async def test_a_broker_that_never_answers_costs_no_sockets() -> None:
    """Each CONNACK timeout closes its socket (aiomqtt 2.5 alone would leak it)."""
    accepted: list[bool] = []
    ended: list[bool] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(True)
        with contextlib.suppress(ConnectionError):
            while await reader.read(4096):
                pass  # swallow CONNECT, never answer
        ended.append(True)  # the client closed its end
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    bus = MqttBus(
        MqttBusSettings(
            url=f"mqtt://127.0.0.1:{port}", reconnect_base=0.02, reconnect_cap=0.05, timeout=0.1
        ),
        client_id="c",
        source="s",
    )
    try:
        async with running(bus):
            await eventually(lambda: len(ended) >= 3)
        # Stopped mid-attempt too: every connection it opened is closed.
        await eventually(lambda: len(ended) == len(accepted))
    finally:
        server.close()
        await server.wait_closed()
    assert bus.stats.connects == 0


async def test_a_persistent_subscriber_gets_what_came_while_it_was_away(
    mosquitto: Mosquitto,
) -> None:
    def detector() -> MqttBus:
        return MqttBus(
            settings(mosquitto),
            client_id="nms-detector",
            source="detector-aa",
            subscribe=OBSERVATIONS,
            persistent=True,
        )

    sender = MqttBus(settings(mosquitto), client_id="sender", source="probe-1of1-aa")
    first = detector()
    async with running(first):
        await eventually(lambda: first.stats.connected)
    # The detector is gone (a restart, a failover): the broker queues for its session.
    async with running(sender):
        for i in range(5):
            await sender.publish(PingBatch((ping(f"ntu-{i}"),)))
        await sender.send(Heartbeat("1/1", True, 0, 0, 0, 0, 0, 0))  # QoS 0: not queued
        async with asyncio.timeout(5):
            await sender.flush()
    second = detector()
    async with running(second):
        got = await take(second, 5)
        await nothing_more(second)
    assert [m.payload.results[0].key for m in got] == [f"ntu-{i}" for i in range(5)]  # type: ignore[union-attr]


async def test_the_persistent_session_survives_a_broker_restart(mosquitto: Mosquitto) -> None:
    detector = MqttBus(
        settings(mosquitto),
        client_id="nms-detector",
        source="detector-aa",
        subscribe=OBSERVATIONS,
        persistent=True,
    )
    async with running(detector):
        await eventually(lambda: detector.stats.connected)
    mosquitto.restart()
    sender = MqttBus(settings(mosquitto), client_id="sender", source="probe-1of1-aa")
    async with running(sender):
        await sender.publish(PingBatch((ping(),)))
        async with asyncio.timeout(5):
            await sender.flush()
    async with running(detector):
        got = await take(detector, 1)
    assert got[0].payload == PingBatch((ping(),))


async def test_the_will_tells_the_detector_a_worker_vanished(mosquitto: Mosquitto) -> None:
    proxy = await _Proxy.start(mosquitto.port)
    will = Heartbeat("1/2", False, 0, 0, 0, 0, 0, 0)
    worker = MqttBus(
        MqttBusSettings(
            url=f"mqtt://127.0.0.1:{proxy.port}", reconnect_base=0.05, reconnect_cap=0.2
        ),
        client_id="probe-1of2-aa",
        source="probe-1of2-aa",
        will=will,
    )
    detector = MqttBus(
        settings(mosquitto),
        client_id="detector",
        source="detector-bb",
        subscribe=["probes/+/heartbeat"],
    )
    try:
        async with running(worker, detector):
            await eventually(lambda: worker.stats.connected and detector.stats.connected)
            proxy.cut()  # the worker's TCP connection dies without a DISCONNECT
            got = await take(detector, 1)
            await eventually(lambda: worker.stats.connects == 2)  # and it comes back
    finally:
        await proxy.close()
    assert got[0].payload == will
    assert got[0].source == "probe-1of2-aa"


class _Proxy:
    """A TCP relay to the broker that a test can cut, or hold back and then end."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._up: list[asyncio.StreamWriter] = []  # toward the broker
        self._down: list[asyncio.StreamWriter] = []  # toward the client
        self._released: list[asyncio.StreamWriter] = []  # half-closed toward the client
        self._held: dict[asyncio.StreamWriter, bytearray] = {}
        self._holding = False
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    async def start(cls, target: int) -> _Proxy:
        proxy = cls()

        async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(65536):
                    if proxy._holding and writer in proxy._down:
                        proxy._held.setdefault(writer, bytearray()).extend(data)
                    elif not writer.is_closing():  # else: cut, what comes goes nowhere
                        writer.write(data)
                        await writer.drain()
            if writer not in proxy._released:
                writer.close()

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
            proxy._up.append(up_writer)
            proxy._down.append(writer)
            for task in (pump(reader, up_writer), pump(up_reader, writer)):
                spawned = asyncio.create_task(task)
                proxy._tasks.add(spawned)
                spawned.add_done_callback(proxy._tasks.discard)

        proxy._server = await asyncio.start_server(accept, "127.0.0.1", 0)
        proxy.port = proxy._server.sockets[0].getsockname()[1]
        return proxy

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def held(self) -> bytes:
        return b"".join(self._held.values())

    def cut(self) -> None:
        """Both sides see the connection die (RST), as in a network failure."""
        for writer in [*self._up, *self._down, *self._released]:
            writer.transport.abort()
        self._up.clear()
        self._down.clear()
        self._released.clear()

    def hold(self) -> None:
        """Keep what the broker sends to the client from now on."""
        self._holding = True

    def release_and_end(self) -> None:
        """Cut the broker side, then give the client what was held and an end of file.

        No acknowledgement the client sends from now on reaches the broker; the
        client can still write (half-close), as when its FIN arrives before the RST.
        """
        for writer in self._up:
            writer.transport.abort()
        for writer in self._down:
            writer.write(bytes(self._held.pop(writer, b"")))
            writer.write_eof()
        self._released += self._down
        self._up.clear()
        self._down.clear()
        self._holding = False

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()


async def test_messages_read_just_before_a_disconnect_are_not_lost(tmp_path: Path) -> None:
    """paho acknowledges on receipt, so a message it has read must reach received()."""
    require(BINARY.exists(), "needs the mosquitto broker (apt install mosquitto)")
    # No limit on QoS 1 messages in flight to a client, so all 200 are on the wire at once.
    broker = Mosquitto(tmp_path, extra_config="max_inflight_messages 0\n")
    broker.start()
    proxy = await _Proxy.start(broker.port)
    detector = MqttBus(  # a clean session: nothing comes again after the reconnect
        MqttBusSettings(url=proxy.url, reconnect_base=0.05, reconnect_cap=0.2),
        client_id="detector",
        source="detector-aa",
        subscribe=OBSERVATIONS,
    )
    sender = MqttBus(settings(broker), client_id="sender", source="probe-1of1-bb")
    try:
        async with running(detector, sender):
            await eventually(lambda: detector.stats.connected and sender.stats.connected)
            proxy.hold()
            for i in range(200):
                await sender.publish(PingBatch((ping(f"ntu-{i}"),)))
            await eventually(lambda: proxy.held.count(b"ntu-") == 200)
            # All 200 and then the end of the connection reach the detector together.
            proxy.release_and_end()
            got = await take(detector, 200)
    finally:
        await proxy.close()
        broker.stop()
    assert [m.payload.results[0].key for m in got] == [f"ntu-{i}" for i in range(200)]  # type: ignore[union-attr]


def test_stats_start_empty() -> None:
    stats = BusStats()
    assert not stats.connected and stats.buffered == 0 and not stats.published
