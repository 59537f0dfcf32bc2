"""``MqttBus``: one process's connection to the broker, and the loop that keeps it.

``run`` owns the connection: connect, (re)subscribe, send the outbox in order (up to
``_WINDOW`` QoS 1 messages in flight), receive - sending and receiving run side by
side, and the receive loop is also what notices a dead connection. On any
``MqttError`` it logs once per outage, backs off (``reconnect_base`` doubling up to
``reconnect_cap``, with jitter so that a fleet of workers does not reconnect in step)
and connects again. See ``nms.bus.mqtt`` for the delivery choices, and
``nms.bus.mqtt.session`` for why a stop (cancelling ``run``) always ends, promptly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from collections.abc import AsyncGenerator, Sequence

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from nms.bus.batch import Batch, PingBatch, SnmpBatch
from nms.bus.mqtt.intake import Intake
from nms.bus.mqtt.outbox import Outbox, Outgoing
from nms.bus.mqtt.session import Crew, connect, disconnect, on_refusal, publish, subscribe
from nms.bus.mqtt.settings import Broker, MqttBusSettings
from nms.bus.mqtt.stats import BusStats
from nms.bus.mqtt.tls import TlsFiles, client_context
from nms.bus.mqtt.topics import qos_for, topic_for
from nms.bus.wire import Message, Payload, WireError, encode
from nms.clock import Clock, SystemClock

log = logging.getLogger("nms.bus")
# paho logs every packet at DEBUG; like aiomqtt's own default logger, keep it to warnings.
_paho_log = logging.getLogger("nms.bus.paho")
_paho_log.setLevel(logging.WARNING)

_WINDOW = 16  # QoS 1 messages in flight at once (paho's own limit is 20)
_SOURCE = re.compile(r"[A-Za-z0-9._-]{1,128}")


class MqttBus:
    """One process's connection to the broker: a ``Bus`` plus any other message kind.

    Run ``run()`` in a task for as long as the bus is used; ``publish``/``send`` queue
    and return at once, ``received``/``batches`` are for one consumer.

    Args:
        settings: broker, prefix and limits.
        client_id: the MQTT client id (a persistent session is kept under it).
        source: this process instance on the wire, unique per process start.
        subscribe: topic filters relative to the prefix, e.g. ``probes/+/ping``.
        persistent: keep the session (and its queued messages) across reconnects.
        will: published by the broker if this process vanishes without a DISCONNECT.
        clock: stamps messages (``now``) and measures how long a connection held.
        sender: the topic level of this process's ``probes/`` messages (default
            ``source``): a probe worker's user name at the broker (``probe-1of2``),
            which the broker's ACL lets it write under and nowhere else.

    Raises:
        ValueError: a bad argument; ``TlsError`` (a ValueError) for a TLS file.
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
        sender: str | None = None,
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
        self._broker = Broker.parse(settings.url)
        self._tls = client_context(settings.tls or TlsFiles()) if self._broker.tls else None
        self._sender = sender
        self._client_id = client_id
        self._source = source
        self._filters = [f"{settings.topic_prefix}/{f}" for f in subscribe]
        self._persistent = persistent
        self._will = will
        self._clock = clock or SystemClock()
        if will is not None:
            encode(Message(source=source, seq=1, sent_at=self._clock.now(), payload=will))
        self._seq = 0
        self._outbox = Outbox(capacity=settings.buffer_batches, stats=self.stats)
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._intake = Intake(stats=self.stats, clock=self._clock, inbox=self._inbox)
        self._random = random.Random()
        self._refusals_warned = 0  # the connection (stats.connects) last warned about

    # -- sending -------------------------------------------------------------------

    async def publish(self, batch: Batch) -> None:
        """Queue a batch of ping or snmp results (an empty one is ignored).

        Raises:
            WireError: the batch cannot be encoded (e.g. a result of the other kind).
        """
        if batch.results:
            self._enqueue_batch(batch)

    async def send(self, payload: Payload, *, retain: bool = False) -> None:
        """Queue any message; returns at once (see ``nms.bus.mqtt`` for QoS)."""
        self._enqueue(self._message(payload), retain=retain)

    async def flush(self) -> None:
        """Return once the outgoing queue is empty and all of it acknowledged.

        Bound it with ``asyncio.timeout``: while the broker is away it waits.
        """
        await self._outbox.drained()

    def _message(self, payload: Payload) -> Message:
        self._seq += 1
        return Message(
            source=self._source, seq=self._seq, sent_at=self._clock.now(), payload=payload
        )

    def _enqueue_batch(self, batch: PingBatch | SnmpBatch) -> None:
        try:
            self._enqueue(self._message(batch), retain=False)
        except WireError as exc:
            # Only a batch too big for one message is "malformed" on encoding: halve it.
            # A mixed batch fails here too, in the caller, where the bug is.
            results = batch.results
            if exc.reason != "malformed" or len(results) < 2:
                raise
            half = len(results) // 2
            if isinstance(batch, PingBatch):
                halves: tuple[Batch, Batch] = (
                    PingBatch(batch.results[:half]),
                    PingBatch(batch.results[half:]),
                )
            else:
                halves = (SnmpBatch(batch.results[:half]), SnmpBatch(batch.results[half:]))
            for part in halves:
                self._enqueue_batch(part)

    def _enqueue(self, message: Message, *, retain: bool) -> None:
        data = encode(message)
        kind = message.kind
        self._outbox.put(
            Outgoing(
                seq=message.seq,
                kind=kind,
                topic=topic_for(self._settings.topic_prefix, message, self._sender),
                data=data,
                qos=qos_for(kind),
                retain=retain,
            )
        )

    # -- receiving -----------------------------------------------------------------

    async def received(self) -> AsyncGenerator[Message, None]:
        """Valid, de-duplicated messages of the subscriptions, in arrival order."""
        while True:
            yield await self._inbox.get()

    async def batches(self) -> AsyncGenerator[Batch, None]:
        """Only the ping and snmp batches of ``received()`` (the ``Bus`` protocol)."""
        while True:
            payload = (await self._inbox.get()).payload
            if isinstance(payload, PingBatch | SnmpBatch):
                yield payload

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
                    await connect(client, timeout=self._settings.timeout)
                    stack.push_async_callback(disconnect, client)
                    connected_at = self._clock.monotonic()
                    if outage_logged:
                        log.info("bus: connected to the broker again")
                        outage_logged = False
                    crew = Crew()
                    crew.spawn(self._receive(client), name="bus-receive")
                    crew.spawn(self._transmit(client, crew), name="bus-send")
                    try:
                        await crew.wait()
                    finally:
                        self._disconnected()
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
            # Real time, not the clock's: this paces socket attempts against a real
            # broker whose own timeouts (connect, CONNACK, keepalive) run on real time
            # too. On a fake clock that nobody advances the bus would never reconnect.
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
                topic_for(self._settings.topic_prefix, message, self._sender),
                encode(message),
                qos=1,
            )
        s, broker = self._settings, self._broker
        client = aiomqtt.Client(
            broker.host,
            broker.port,
            username=s.username if s.username is not None else broker.username,
            password=s.password if s.username is not None else broker.password,
            tls_context=self._tls,
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
        on_refusal(client, self._refused)
        return client

    def _refused(self, topic: str, reason: str) -> None:
        # The message is gone (the broker acknowledged it): say so once per
        # connection, loudly - it is a deployment error, not a passing outage.
        self.stats.refused += 1
        first = self._refusals_warned != self.stats.connects
        self._refusals_warned = self.stats.connects
        log.log(
            logging.WARNING if first else logging.DEBUG,
            "bus: the broker refused a message on %s (%s) and dropped it: its ACL does "
            "not let this client write there; check the ACL file and this process's "
            "user name at the broker (its certificate's CN)",
            topic,
            reason,
        )

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
        self._outbox.requeue()

    async def _receive(self, client: aiomqtt.Client) -> None:
        # Also the watchdog: the iterator raises MqttError when the connection drops,
        # which fails the crew and so stops _transmit's waits for acks.
        try:
            async for raw in client.messages:
                self._intake.accept(raw.topic.value, bytes(raw.payload))
            raise aiomqtt.MqttError("the broker's message stream ended")
        finally:
            # aiomqtt's iterator stops at a disconnect even when messages are still in
            # its queue - messages paho has acknowledged to the broker already, so the
            # broker will not send them again. Take them, or they are lost.
            queue = client._queue
            while not queue.empty():
                raw = queue.get_nowait()
                self._intake.accept(raw.topic.value, bytes(raw.payload))

    async def _transmit(self, client: aiomqtt.Client, crew: Crew) -> None:
        await subscribe(client, self._filters, ack_timeout=self._settings.timeout)
        self._connected()
        window = asyncio.Semaphore(_WINDOW)
        while True:
            await window.acquire()
            entry = await self._outbox.take()
            # Tasks start in creation order and publish() hands the packet to paho
            # before its first await, so the broker gets the messages in queue order.
            crew.spawn(self._publish(client, entry, window), name=f"bus-pub-{entry.seq}")

    async def _publish(
        self, client: aiomqtt.Client, entry: Outgoing, window: asyncio.Semaphore
    ) -> None:
        try:
            await publish(
                client,
                entry.topic,
                entry.data,
                qos=entry.qos,
                retain=entry.retain,
                ack_timeout=self._settings.timeout,
            )
        finally:
            window.release()
        self._outbox.sent(entry)
