"""The MQTT v5 bus of the distributed wiring (aiomqtt 2.x over paho-mqtt).

Topics (``<prefix>`` is ``bus.topic_prefix``, ``nms/v1`` by default; ``+``, ``#`` and
``/`` inside an id become ``_``)::

    <prefix>/probes/<source>/ping|snmp|heartbeat   probe worker -> detector
    <prefix>/detector/ntus/<ntu id>                 NTU status, retained
    <prefix>/cases/<case ref>                       case timeline events
    <prefix>/control/skip                           detector -> probes, retained

Delivery choices, and why:

- Observations, ``ntu_state``, ``case``, ``skip`` and the will go at QoS 1: the broker
  keeps and retries them until acknowledged. QoS 1 may deliver a message twice (a
  PUBACK lost in a reconnect), so every message carries ``(source, seq)`` and the
  receiver drops what it has already seen: effectively once, without QoS 2's second
  round trip per message.
- Heartbeats go at QoS 0: one comes every few seconds and only the latest matters; a
  lost one is replaced by the next, and the broker does not queue them for an absent
  detector (a backlog of old heartbeats says nothing).
- ``ntu_state`` and ``skip`` are retained: a late subscriber (a dashboard, a probe worker
  that just started or reconnected) needs the current value now, not at the next
  change. Observations and heartbeats are not: a retained old one would pass for news.
- ``persistent=True`` (the detector): ``clean_start=False``, a session expiry
  (``session_expiry``) and QoS 1 subscriptions. The broker keeps the subscriptions and
  queues what arrives while the detector is away - a restart, or a failover to the
  standby, which connects with the same client id - so a detector change loses nothing
  queued at the broker (up to the expiry and the broker's ``max_queued_messages``).
- ``persistent=False`` (probe workers): a clean session. They hold no subscription of
  value (the skip set is retained, so every reconnect brings the current one), and a
  session left behind by every restarted worker would only fill the broker.
- Sending never waits for the broker: a message goes into a bounded outgoing queue
  (``buffer_batches``) and leaves it only when the broker acknowledged it, so a
  connection lost mid-flight re-sends it (a duplicate, dropped by the receiver, never a
  gap). When the queue is full the OLDEST message is dropped and counted: for
  monitoring, newer data is worth more than older.
- The will, ``Heartbeat(alive=False)`` at QoS 1, is published by the broker when a
  worker vanishes without a DISCONNECT (crash, network cut), so the detector knows at
  once instead of waiting for the heartbeat to go stale. A clean stop discards it, so
  the worker sends ``alive=False`` itself (``send`` then ``flush``).

``run`` owns the connection: connect, (re)subscribe, send the queue in order (up to
``_WINDOW`` QoS 1 messages in flight), receive - sending and receiving run side by
side, and the receive loop is also what notices a dead connection. On any ``MqttError``
it logs once per outage, backs off (``reconnect_base`` doubling up to
``reconnect_cap``, with jitter so that a fleet of workers does not reconnect in step)
and connects again. Received messages are decoded, de-duplicated and queued for
``received()``; a bad one is counted by reason, logged (rate-limited) and skipped.

What callers must keep in mind:

- ``source`` must be unique per process instance (e.g. ``probe-1of2-<random>``): a
  restarted process that reused a source would start again at seq 1, and receivers
  that remember the old instance would drop its messages as duplicates.
- Two live connections with one client id take the session from each other in a loop;
  a standby detector must not run its bus until it is the leader.
- ``received()`` is unbounded, like aiomqtt's own queue behind it (paho acknowledges
  QoS 1 on receipt, so there is no back-pressure to give the broker): the consumer
  must keep up. ``stats.connected`` means connected *and* subscribed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from collections import Counter, OrderedDict, deque
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import unquote, urlsplit

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from nms.bus.inprocess import Batch
from nms.bus.wire import (
    CaseChange,
    Message,
    NtuStateChange,
    Payload,
    SkipSet,
    WireError,
    decode,
    encode,
)
from nms.clock import Clock, SystemClock
from probes.observation import PingResult, SnmpResult

log = logging.getLogger("nms.bus")
# paho logs every packet at DEBUG; like aiomqtt's own default logger, keep it to warnings.
_paho_log = logging.getLogger("nms.bus.paho")
_paho_log.setLevel(logging.WARNING)

_WINDOW = 16  # QoS 1 messages in flight at once (paho's own limit is 20)
_REJECT_LOG_PERIOD = 10.0  # seconds between two log lines about rejects of one reason
_DEDUPE_PER_SOURCE = 4096
_DEDUPE_SOURCES = 1024
_SOURCE = re.compile(r"[A-Za-z0-9._-]{1,128}")
_UNSAFE_IN_LEVEL = re.compile(r"[+#/\x00]")
_MAX_SESSION_EXPIRY = 2**32 - 1  # a four-byte integer in CONNECT; this value means never


@dataclass(frozen=True, slots=True)
class MqttBusSettings:
    """Connection settings; ``timeout`` bounds connect, subscribe and each publish ack."""

    url: str  # mqtt://[user:pass@]host[:port]
    topic_prefix: str = "nms/v1"
    session_expiry: float = 3600.0  # seconds, for persistent=True clients
    buffer_batches: int = 2000
    reconnect_base: float = 0.5  # backoff with jitter, doubling...
    reconnect_cap: float = 30.0  # ...up to this
    keepalive: int = 10
    timeout: float = 10.0

    def __post_init__(self) -> None:
        _Broker.parse(self.url)
        prefix = self.topic_prefix
        if not prefix or prefix.startswith("/") or prefix.endswith("/") or "+" in prefix:
            raise ValueError(f"topic_prefix {prefix!r}: not a topic like 'nms/v1'")
        if "#" in prefix or "\x00" in prefix:
            raise ValueError(f"topic_prefix {prefix!r}: must not contain '#'")
        if not 0 <= self.session_expiry <= _MAX_SESSION_EXPIRY:
            raise ValueError(f"session_expiry {self.session_expiry}: 0 to {_MAX_SESSION_EXPIRY} s")
        if self.buffer_batches < 1:
            raise ValueError("buffer_batches must be at least 1")
        if not 0 < self.reconnect_base <= self.reconnect_cap:
            raise ValueError("need 0 < reconnect_base <= reconnect_cap")
        if not 1 <= self.keepalive <= 65535:
            raise ValueError("keepalive must be 1 to 65535 s")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")


@dataclass(frozen=True, slots=True)
class _Broker:
    host: str
    port: int
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> _Broker:
        parts = urlsplit(url)
        if parts.scheme != "mqtt":
            raise ValueError(f"bus url {url!r}: expected mqtt://[user:pass@]host[:port]")
        if not parts.hostname:
            raise ValueError(f"bus url {url!r}: no host")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"bus url {url!r}: unexpected path or query")
        port = parts.port or 1883  # ValueError for a bad port
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username is not None else None,
            password=unquote(parts.password) if parts.password is not None else None,
        )


@dataclass(slots=True)
class BusStats:
    """Counters of one bus, read by the metrics collector."""

    connected: bool = False  # connected and subscribed: messages move both ways
    connects: int = 0
    disconnects: int = 0  # connections that ended (broker gone, error, stop)
    published: Counter[str] = field(default_factory=Counter)  # acknowledged, by kind
    received: Counter[str] = field(default_factory=Counter)  # valid, not duplicate, by kind
    rejected: Counter[str] = field(default_factory=Counter)  # by WireError.reason
    duplicates: int = 0
    buffered: int = 0  # outgoing messages not yet acknowledged
    dropped: int = 0  # outgoing messages dropped because the buffer was full


@dataclass(frozen=True, slots=True)
class _Outgoing:
    seq: int  # also the order of the queue
    kind: str
    topic: str
    data: bytes
    qos: int
    retain: bool


def topic_for(prefix: str, message: Message) -> str:
    """The topic ``message`` is published on (see the module docstring)."""
    payload = message.payload
    if isinstance(payload, NtuStateChange):
        return f"{prefix}/detector/ntus/{_level(payload.ntu_id)}"
    if isinstance(payload, CaseChange):
        return f"{prefix}/cases/{_level(payload.ref)}"
    if isinstance(payload, SkipSet):
        return f"{prefix}/control/skip"
    return f"{prefix}/probes/{_level(message.source)}/{message.kind}"


def _level(text: str) -> str:
    """``text`` as one topic level: wildcards and separators would change the topic."""
    return _UNSAFE_IN_LEVEL.sub("_", text) or "_"


class _Seen:
    """The last ``per_source`` seqs of the last ``sources`` sources, for dedupe.

    Remembered by arrival, not by value: retained messages come in any order on
    subscribe, so "below the highest seq seen" does not mean "seen".
    """

    def __init__(self, *, per_source: int, sources: int) -> None:
        self._per_source = per_source
        self._sources = sources
        self._by_source: OrderedDict[str, tuple[set[int], deque[int]]] = OrderedDict()

    def add(self, source: str, seq: int) -> bool:
        """Remember ``(source, seq)``; False if it was remembered already."""
        entry = self._by_source.get(source)
        if entry is None:
            entry = self._by_source[source] = (set(), deque())
            if len(self._by_source) > self._sources:
                self._by_source.popitem(last=False)
        else:
            self._by_source.move_to_end(source)
        seen, order = entry
        if seq in seen:
            return False
        seen.add(seq)
        order.append(seq)
        if len(order) > self._per_source:
            seen.discard(order.popleft())
        return True


class MqttBus:
    """One process's connection to the broker: a ``Bus`` plus any other message kind.

    Run ``run()`` in a task for as long as the bus is used; ``publish``/``send`` queue
    and return at once, ``received``/``batches`` are for one consumer.
    """

    def __init__(
        self,
        settings: MqttBusSettings,
        *,
        client_id: str,
        source: str,
        subscribe: Sequence[str] = (),
        persistent: bool = False,
        will: Payload | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not client_id:
            raise ValueError("client_id must not be empty")
        if not _SOURCE.fullmatch(source):
            raise ValueError(f"source {source!r}: 1 to 128 of [A-Za-z0-9._-]")
        if isinstance(subscribe, str):
            raise TypeError("subscribe is a sequence of topic filters, not one string")
        for topic_filter in subscribe:
            if not topic_filter or topic_filter.startswith("/"):
                raise ValueError(f"subscription {topic_filter!r}: relative to the prefix")
        self.stats = BusStats()
        self._settings = settings
        self._broker = _Broker.parse(settings.url)
        self._client_id = client_id
        self._source = source
        self._filters = [f"{settings.topic_prefix}/{f}" for f in subscribe]
        self._persistent = persistent
        self._will = will
        self._clock = clock or SystemClock()
        if will is not None:
            encode(Message(source=source, seq=1, sent_at=self._clock.now(), payload=will))
        self._seq = 0
        self._queue: deque[_Outgoing] = deque()
        self._inflight: dict[int, _Outgoing] = {}  # by seq: insertion order is queue order
        self._wakeup = asyncio.Event()  # something was queued
        self._drained = asyncio.Event()  # nothing queued or in flight
        self._drained.set()
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._seen = _Seen(per_source=_DEDUPE_PER_SOURCE, sources=_DEDUPE_SOURCES)
        self._random = random.Random()
        self._dropping = 0  # dropped in the current burst
        self._rejects_logged: dict[str, tuple[float, int]] = {}  # reason -> (when, since)

    # -- sending -------------------------------------------------------------------

    async def publish(self, batch: Batch) -> None:
        """Queue a batch of ping or snmp results (an empty one is ignored)."""
        if batch:
            # A mixed batch fails in encode(), in the caller, where the bug is.
            self._enqueue_batch(
                cast("tuple[PingResult, ...] | tuple[SnmpResult, ...]", tuple(batch))
            )

    async def send(self, payload: Payload, *, retain: bool = False) -> None:
        """Queue any message; returns at once (see the module docstring for QoS)."""
        self._enqueue(self._message(payload), retain=retain)

    async def flush(self) -> None:
        """Return once the outgoing queue is empty and all of it acknowledged.

        Bound it with ``asyncio.timeout``: while the broker is away it waits.
        """
        await self._drained.wait()

    def _message(self, payload: Payload) -> Message:
        self._seq += 1
        return Message(
            source=self._source, seq=self._seq, sent_at=self._clock.now(), payload=payload
        )

    def _enqueue_batch(self, results: tuple[PingResult, ...] | tuple[SnmpResult, ...]) -> None:
        message = self._message(results)
        try:
            self._enqueue(message, retain=False)
        except WireError as exc:
            # Only a batch too big for one message is "malformed" on encoding: halve it.
            if exc.reason != "malformed" or len(results) < 2:
                raise
            half = len(results) // 2
            self._enqueue_batch(results[:half])
            self._enqueue_batch(results[half:])

    def _enqueue(self, message: Message, *, retain: bool) -> None:
        data = encode(message)
        kind = message.kind
        entry = _Outgoing(
            seq=message.seq,
            kind=kind,
            topic=topic_for(self._settings.topic_prefix, message),
            data=data,
            qos=0 if kind == "heartbeat" else 1,
            retain=retain,
        )
        if self._queue and len(self._queue) + len(self._inflight) >= self._settings.buffer_batches:
            self._drop(self._queue.popleft())
        self._queue.append(entry)
        self._wakeup.set()
        self._drained.clear()
        self._count_buffered()

    def _drop(self, entry: _Outgoing) -> None:
        self.stats.dropped += 1
        if self._dropping == 0:
            log.warning(
                "bus: outgoing buffer full (%d messages, broker %s); dropping the oldest",
                self._settings.buffer_batches,
                "connected" if self.stats.connected else "unreachable",
            )
        self._dropping += 1

    def _count_buffered(self) -> None:
        self.stats.buffered = len(self._queue) + len(self._inflight)
        if self.stats.buffered == 0:
            self._drained.set()

    # -- receiving -----------------------------------------------------------------

    async def received(self) -> AsyncGenerator[Message, None]:
        """Valid, de-duplicated messages of the subscriptions, in arrival order."""
        while True:
            yield await self._inbox.get()

    async def batches(self) -> AsyncGenerator[Batch, None]:
        """Only the ping and snmp batches of ``received()`` (the ``Bus`` protocol)."""
        while True:
            message = await self._inbox.get()
            if isinstance(message.payload, tuple):
                yield message.payload

    def _accept(self, topic: str, data: bytes) -> None:
        try:
            message = decode(data)
        except WireError as exc:
            self.stats.rejected[exc.reason] += 1
            self._log_reject(topic, exc)
            return
        if not self._seen.add(message.source, message.seq):
            self.stats.duplicates += 1
            return
        self.stats.received[message.kind] += 1
        self._inbox.put_nowait(message)

    def _log_reject(self, topic: str, exc: WireError) -> None:
        now = self._clock.monotonic()
        last, since = self._rejects_logged.get(exc.reason, (None, 0))
        if last is not None and now - last < _REJECT_LOG_PERIOD:
            self._rejects_logged[exc.reason] = (last, since + 1)
            return
        more = f" ({since} more {exc.reason} rejects since the last report)" if since else ""
        log.warning("bus: rejected a message on %s (%s): %s%s", topic, exc.reason, exc, more)
        self._rejects_logged[exc.reason] = (now, 0)

    # -- the connection ------------------------------------------------------------

    async def run(self) -> None:
        """Keep connected and move messages both ways; returns only when cancelled."""
        failures = 0
        outage_logged = False
        while True:
            connected_at: float | None = None
            try:
                client = self._client()
                async with contextlib.AsyncExitStack() as stack:
                    await _connect(client)
                    stack.push_async_callback(_disconnect, client)
                    connected_at = self._clock.monotonic()
                    if outage_logged:
                        log.info("bus: connected to the broker again")
                        outage_logged = False
                    try:
                        async with asyncio.TaskGroup() as tasks:
                            tasks.create_task(self._receive(client), name="bus-receive")
                            tasks.create_task(self._transmit(client, tasks), name="bus-send")
                    finally:
                        self._disconnected()
            except ExceptionGroup as group:
                error = _mqtt_error(group)
            except aiomqtt.MqttError as exc:
                error = exc
            # Only a connection that held for a while resets the backoff: one that drops
            # at once (a client-id clash, refused subscriptions) keeps backing off
            # instead of hammering the broker.
            held = connected_at is not None and (
                self._clock.monotonic() - connected_at >= self._settings.reconnect_cap
            )
            if held:
                failures = 0
            failures += 1
            delay = self._backoff(failures)
            if not outage_logged:
                log.warning(
                    "bus: %s broker %s:%d: %s; retrying in %.2f s, backing off up to %s s",
                    "lost the" if connected_at is not None else "cannot reach the",
                    self._broker.host,
                    self._broker.port,
                    error,
                    delay,
                    self._settings.reconnect_cap,
                )
                outage_logged = True
            else:
                log.debug("bus: still no broker: %s; retrying in %.2f s", error, delay)
            await asyncio.sleep(delay)

    def _backoff(self, failures: int) -> float:
        s = self._settings
        ceiling = min(s.reconnect_cap, s.reconnect_base * (1 << min(failures - 1, 30)))
        return ceiling / 2 + self._random.uniform(0, ceiling / 2)

    def _client(self) -> aiomqtt.Client:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if self._persistent:
            properties.SessionExpiryInterval = int(self._settings.session_expiry)
        will = None
        if self._will is not None:
            message = self._message(self._will)
            will = aiomqtt.Will(
                topic_for(self._settings.topic_prefix, message), encode(message), qos=1
            )
        client = aiomqtt.Client(
            self._broker.host,
            self._broker.port,
            username=self._broker.username,
            password=self._broker.password,
            identifier=self._client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            will=will,
            clean_start=not self._persistent,
            keepalive=self._settings.keepalive,
            timeout=self._settings.timeout,
            properties=properties,
            logger=_paho_log,
        )
        # aiomqtt warns above 10 pending calls; we keep up to _WINDOW on purpose.
        client.pending_calls_threshold = _WINDOW + 4
        return client

    def _connected(self) -> None:
        self.stats.connected = True
        self.stats.connects += 1
        log.info(
            "bus: connected to %s:%d as %s (%s session)",
            self._broker.host,
            self._broker.port,
            self._client_id,
            "persistent" if self._persistent else "clean",
        )

    def _disconnected(self) -> None:
        if self.stats.connected:
            self.stats.disconnects += 1
        self.stats.connected = False
        # What the broker did not acknowledge goes back to the front, in order.
        self._queue.extendleft(reversed(self._inflight.values()))
        self._inflight.clear()
        while len(self._queue) > self._settings.buffer_batches:
            self._drop(self._queue.popleft())
        self._count_buffered()

    async def _receive(self, client: aiomqtt.Client) -> None:
        # Also the watchdog: the iterator raises MqttError when the connection drops,
        # which fails the task group and so stops _transmit's waits for acks.
        try:
            async for raw in client.messages:
                self._accept(raw.topic.value, bytes(raw.payload))
        finally:
            # aiomqtt's iterator stops at a disconnect even when messages are still in
            # its queue - messages paho has acknowledged to the broker already, so the
            # broker will not send them again. Take them, or they are lost.
            queue = client._queue
            while not queue.empty():
                raw = queue.get_nowait()
                self._accept(raw.topic.value, bytes(raw.payload))

    async def _transmit(self, client: aiomqtt.Client, tasks: asyncio.TaskGroup) -> None:
        await self._subscribe(client)
        self._connected()
        window = asyncio.Semaphore(_WINDOW)
        while True:
            await window.acquire()
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            entry = self._queue.popleft()
            self._inflight[entry.seq] = entry
            # Tasks start in creation order and publish() hands the packet to paho
            # before its first await, so the broker gets the messages in queue order.
            tasks.create_task(self._publish(client, entry, window), name=f"bus-pub-{entry.seq}")

    async def _publish(
        self, client: aiomqtt.Client, entry: _Outgoing, window: asyncio.Semaphore
    ) -> None:
        try:
            await client.publish(
                entry.topic,
                entry.data,
                qos=entry.qos,
                retain=entry.retain,
                timeout=self._settings.timeout,
            )
        finally:
            window.release()
        self._inflight.pop(entry.seq, None)
        self.stats.published[entry.kind] += 1
        if self._dropping:
            log.info("bus: sending again; %d messages were dropped", self._dropping)
            self._dropping = 0
        self._count_buffered()

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        if not self._filters:
            return
        # "If new": a persistent session that survived gets no second copy of the
        # retained messages; a clean session always gets the current ones.
        options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
        codes = await client.subscribe(
            [(f, options) for f in self._filters], timeout=self._settings.timeout
        )
        results: list[int | ReasonCode] = list(codes)
        refused = [
            f"{f} ({code})"
            for f, code in zip(self._filters, results, strict=False)
            if (code.value if isinstance(code, ReasonCode) else code) >= 0x80
        ]
        if refused:
            raise aiomqtt.MqttError(f"the broker refused the subscription to {', '.join(refused)}")


def _mqtt_error(group: ExceptionGroup[Exception]) -> aiomqtt.MqttError:
    """The MqttError that ended a connection; anything else is a bug and re-raised."""
    matched, rest = group.split(aiomqtt.MqttError)
    if rest is not None:
        raise rest
    assert matched is not None
    error: Exception = matched
    while isinstance(error, ExceptionGroup):
        error = error.exceptions[0]
    assert isinstance(error, aiomqtt.MqttError)
    return error


async def _connect(client: aiomqtt.Client) -> None:
    """``client.__aenter__``, without leaking the socket when it fails or is cancelled.

    aiomqtt 2.5 leaves the socket of a connect that timed out waiting for CONNACK
    open, its reader registered on the loop: a broker that accepts TCP but does not
    answer would cost one file descriptor per retry. And a cancelled ``__aenter__``
    never cleans up at all; so let the attempt finish, then close what it opened.
    """
    attempt = asyncio.ensure_future(client.__aenter__())
    try:
        await asyncio.shield(attempt)
    except asyncio.CancelledError:
        # Bounded: a stop must never hang on a broker that does not answer.
        done, _ = await asyncio.wait({attempt}, timeout=_cleanup_seconds(client))
        if not done:
            attempt.cancel()
            _close_socket(client)
        elif attempt.cancelled() or attempt.exception() is not None:
            _close_socket(client)
        else:
            await _disconnect(client)
        raise
    except aiomqtt.MqttError:
        _close_socket(client)
        raise


def _cleanup_seconds(client: aiomqtt.Client) -> float:
    # aiomqtt bounds each of its own waits by ``timeout``; a little more for ours.
    return float(client.timeout) + 1.0


def _close_socket(client: aiomqtt.Client) -> None:
    # paho's own close: unregisters aiomqtt's reader and writer (its socket callbacks),
    # stops aiomqtt's misc task and closes the socket; a no-op without a socket.
    client._client._sock_close()


async def _disconnect(client: aiomqtt.Client) -> None:
    # A failing DISCONNECT (the broker is gone already) changes nothing, and must not
    # replace the exception (or the cancellation) that ended the connection.
    try:
        async with asyncio.timeout(_cleanup_seconds(client)):
            await client.__aexit__(None, None, None)
    except (aiomqtt.MqttError, TimeoutError):
        _close_socket(client)
    # A connection that dropped just as we were stopped: nobody asked aiomqtt why, and
    # asyncio would log "Future exception was never retrieved" for it. We do not care.
    disconnected = client._disconnected
    if disconnected.done() and not disconnected.cancelled():
        disconnected.exception()
