"""One aiomqtt connection: connect, subscribe, publish, disconnect - and stop cleanly.

Why a stop used to hang, and why this module looks the way it does
------------------------------------------------------------------

A stop is one ``cancel()`` of the task running ``MqttBus.run``. One CI run hung 300 s
there: the cancellation was *swallowed* - the task carried on as if never cancelled,
reconnected, and whoever awaited it waited forever. Python 3.11 has two ways to lose
a cancellation, and the bus used both:

1. ``asyncio.wait_for(inner, timeout)``, which aiomqtt wraps around every wait for the
   broker (CONNACK, SUBACK, PUBACK, the end of DISCONNECT), returns ``inner``'s result
   instead of raising when the cancel arrives in the loop iteration in which
   ``inner`` completes (bpo-42130; 3.12 rebuilt ``wait_for`` on ``asyncio.timeout``).
   A ``_transmit`` whose cancel landed as the SUBACK arrived went on into its endless
   "take the next message" loop, and the task group waited for it for ever.
2. ``asyncio.TaskGroup.__aexit__``, when a child has just failed (the broker dropped
   the connection: ``_receive`` raises) and so the group is aborting, swallows a
   cancellation of the waiting task and raises the child's error instead: ``run``
   took the stop for a lost connection, backed off and reconnected. A stop during a
   broker restart hits this; ``tests/nms/bus/test_mqtt_stop.py`` shows both (the
   bus before this change fails all three of its scenarios).

Both are narrow races - the cancel must land in one particular loop iteration - so
the hang showed once in many CI runs, and the earlier mitigations (bounding the
clean-up, closing the socket) did not reach it. The fix is structural: no await on
the bus can swallow a cancellation.

- Every aiomqtt call gets ``timeout=math.inf``, for which aiomqtt's
  ``wait_for(x, None)`` is a plain ``await x``; the bound is ours, ``asyncio.timeout``,
  which lets an outside cancellation win over its own expiry.
- Connect and disconnect are done here, not by ``Client.__aenter__``/``__aexit__``
  (which wait through ``wait_for`` with the client's default timeout); each ends by
  closing the socket itself, so a stop takes at most ``DISCONNECT_WAIT`` even when the
  broker is stalled or gone.
- The connection's tasks run in a ``Crew``, not a ``TaskGroup``: the waiting task
  awaits one future, which a cancellation always interrupts.

Connect runs paho's blocking ``connect`` (TCP, the TLS handshake, sending CONNECT) in
an executor thread, as aiomqtt does. A thread cannot be cancelled: a stop while it
runs returns at once and leaves a callback that closes the socket when the thread
finishes (paho bounds it by ``connect_timeout``), so no socket outlives the attempt.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, cast

import aiomqtt
from paho.mqtt.client import MQTT_LOG_ERR, MQTT_LOG_WARNING
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

DISCONNECT_WAIT = 1.0
"""How long a stop waits for the broker to take DISCONNECT (one small packet) before
it closes the socket anyway; a broker that takes longer is stalled or gone."""

# A connection has at most a few of these at once (an abandoned connect each).
_OPENING: set[asyncio.Future[None]] = set()


async def connect(client: aiomqtt.Client, *, timeout: float) -> None:  # noqa: ASYNC109
    """Open the connection and wait for the broker's CONNACK, at most ``timeout`` s.

    The bound is not the caller's ``asyncio.timeout``: the socket thread needs it too.

    Raises:
        aiomqtt.MqttError: the broker cannot be reached, the TLS handshake failed, the
            broker closed the connection or refused it (CONNACK), or it did not answer
            in time. The socket is closed.
    """
    loop = asyncio.get_running_loop()
    client.timeout = math.inf  # aiomqtt's waits: plain awaits (see the module docstring)
    client._client.connect_timeout = timeout  # paho's socket connect and TLS handshake
    closed = loop.create_future()
    errors: list[str] = []
    _watch(client, loop, closed, errors)
    register = _defer_registration(client)
    opening = loop.run_in_executor(None, client._client_connect)
    try:
        async with asyncio.timeout(timeout):
            try:
                await asyncio.shield(opening)
            except OSError as exc:  # ssl.SSLError and socket errors; the thread is done
                raise aiomqtt.MqttError(_describe(exc)) from None
            register()
            done, _ = await asyncio.wait(
                {client._connected, closed}, return_when=asyncio.FIRST_COMPLETED
            )
            if client._connected not in done:
                why = errors[-1] if errors else "no reason given"
                raise aiomqtt.MqttError(f"the broker closed the connection before CONNACK: {why}")
            client._connected.result()  # MqttConnectError for a refusal (e.g. not authorised)
        # Connected: paho's own log lines again (a lost connection, a callback's error).
        client._client.on_log = None
        client._client.enable_logger(client._logger)
    except TimeoutError:
        _abandon(client, opening)
        raise aiomqtt.MqttError(f"no CONNACK from the broker within {timeout:g} s") from None
    except BaseException:
        _abandon(client, opening)
        raise


def _watch(
    client: aiomqtt.Client,
    loop: asyncio.AbstractEventLoop,
    closed: asyncio.Future[None],
    errors: list[str],
) -> None:
    """Set ``closed`` when paho closes the socket; keep paho's error lines for the why.

    aiomqtt learns of a connection that ends before CONNACK only from its own timeout;
    a broker refusing our certificate would then read "timed out", not the reason.
    Until CONNACK, paho's lines go into the error (which the bus logs once per
    outage) instead of the log, where a refused worker would repeat them every retry.
    """
    paho = client._client
    on_close = paho.on_socket_close

    def socket_closed(inner: Any, userdata: Any, sock: Any) -> None:
        if on_close is not None:
            on_close(inner, userdata, sock)
        loop.call_soon_threadsafe(_settle, closed)

    def log(inner: Any, userdata: Any, level: int, text: str) -> None:
        if level in (MQTT_LOG_ERR, MQTT_LOG_WARNING):
            errors.append(text)

    paho.on_socket_close = socket_closed
    paho.on_log = log
    paho.disable_logger()


def _defer_registration(client: aiomqtt.Client) -> Callable[[], None]:
    """Hold back aiomqtt's socket registrations until paho's connect thread is done.

    aiomqtt registers the socket's reader and writer from that thread, each with a
    ``call_soon_threadsafe``; the reader can run, see the broker close the connection
    (a refused certificate: TLS 1.3 reports it after the handshake) and close the
    socket before the writer's registration runs - which then fails on a closed file
    descriptor ("Exception in callback ... add_writer", one per retry). And a connect
    abandoned by a stop should register nothing at all. So: record them in the
    thread, replay them on the loop once the thread is done, all in one go.
    """
    paho = client._client
    on_open, on_write = paho.on_socket_open, paho.on_socket_register_write
    held: list[Callable[[], None]] = []

    def opened(inner: Any, userdata: Any, sock: Any) -> None:
        if on_open is not None:
            held.append(functools.partial(on_open, inner, userdata, sock))

    def wants_write(inner: Any, userdata: Any, sock: Any) -> None:
        if on_write is not None:
            held.append(functools.partial(on_write, inner, userdata, sock))

    def register() -> None:
        paho.on_socket_open, paho.on_socket_register_write = on_open, on_write
        for call in held:
            call()

    paho.on_socket_open, paho.on_socket_register_write = opened, wants_write
    return register


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _describe(exc: OSError) -> str:
    text = str(exc)
    return text if text else type(exc).__name__


def _abandon(client: aiomqtt.Client, opening: asyncio.Future[None]) -> None:
    """Close the socket of a failed or cancelled connect - now, or when paho's thread ends."""
    if opening.done():
        if not opening.cancelled():
            opening.exception()  # retrieved: asyncio would log it as never retrieved
        close_socket(client)
        return

    def finished(future: asyncio.Future[None]) -> None:
        _OPENING.discard(future)
        if not future.cancelled():
            future.exception()
        close_socket(client)

    _OPENING.add(opening)
    opening.add_done_callback(finished)


def close_socket(client: aiomqtt.Client) -> None:
    """Close the connection's socket now; a no-op without one.

    paho's own close: it unregisters aiomqtt's reader and writer (its socket
    callbacks), cancels aiomqtt's keepalive task and closes the socket.
    """
    client._client._sock_close()


async def subscribe(client: aiomqtt.Client, filters: Sequence[str], *, ack_timeout: float) -> None:
    """Subscribe to ``filters`` at QoS 1.

    Raises:
        aiomqtt.MqttError: the broker refused one of them (named in the message), or
            did not answer within ``ack_timeout``.
    """
    if not filters:
        return
    # "If new": a persistent session that survived gets no second copy of the
    # retained messages; a clean session always gets the current ones.
    options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
    try:
        async with asyncio.timeout(ack_timeout):
            codes = await client.subscribe([(f, options) for f in filters], timeout=math.inf)
    except TimeoutError:
        raise aiomqtt.MqttError(f"no SUBACK from the broker within {ack_timeout:g} s") from None
    results: list[int | ReasonCode] = list(codes)
    refused = [
        f"{f} ({code})"
        for f, code in zip(filters, results, strict=False)
        if (code.value if isinstance(code, ReasonCode) else code) >= 0x80
    ]
    if refused:
        raise aiomqtt.MqttError(f"the broker refused the subscription to {', '.join(refused)}")


async def publish(
    client: aiomqtt.Client,
    topic: str,
    data: bytes,
    *,
    qos: int,
    retain: bool,
    ack_timeout: float,
) -> None:
    """Publish; at QoS 1, return once the broker acknowledged (PUBACK).

    Raises:
        aiomqtt.MqttError: the connection is gone, or no PUBACK within ``ack_timeout``.
    """
    try:
        async with asyncio.timeout(ack_timeout):
            await client.publish(topic, data, qos=qos, retain=retain, timeout=math.inf)
    except TimeoutError:
        raise aiomqtt.MqttError(f"no PUBACK from the broker within {ack_timeout:g} s") from None


def on_refusal(client: aiomqtt.Client, refused: Callable[[str, str], None]) -> None:
    """Call ``refused(topic, reason)`` for each message the broker acknowledged as refused.

    An MQTT v5 broker acknowledges a QoS 1 message its ACL forbids with a PUBACK
    "Not authorized" (0x87) and drops it: for aiomqtt that is a publish like any
    other, and the sender would never know its messages go nowhere.
    """
    paho = client._client
    on_publish = paho.on_publish

    def published(inner: Any, userdata: Any, mid: int, code: Any, properties: Any) -> None:
        if isinstance(code, ReasonCode) and code.is_failure:
            message = paho._out_messages.get(mid)
            refused(message.topic if message is not None else "?", str(code))
        if on_publish is not None:
            cast(Any, on_publish)(inner, userdata, mid, code, properties)

    paho.on_publish = published


class Crew:
    """The tasks of one connection; the first to fail ends it - and a stop always ends it.

    What ``asyncio.TaskGroup`` does, without its 3.11 habit of swallowing a
    cancellation that arrives as a child fails (see the module docstring): the
    waiting task awaits one future, which a cancellation always interrupts.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._failed: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coro`` as one of the connection's tasks."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()  # retrieved, whether first or not
        if error is not None and not self._failed.done():
            self._failed.set_result(error)

    async def wait(self) -> None:
        """Until a task fails; raise its error, after cancelling and awaiting the rest.

        Raises:
            aiomqtt.MqttError: the connection failed (anything else is a bug).
        """
        try:
            error = await self._failed
        finally:
            for task in self._tasks:
                task.cancel()
            if self._tasks:
                # Each ends at its next await (none of them shields); bounded all the same.
                await asyncio.wait(self._tasks, timeout=DISCONNECT_WAIT)
        raise error


async def disconnect(client: aiomqtt.Client) -> None:
    """Send DISCONNECT, wait up to ``DISCONNECT_WAIT`` for it to go, close the socket.

    Never raises but CancelledError (a second stop): a DISCONNECT that fails (the
    broker is gone already) changes nothing, and must not replace the exception (or
    the cancellation) that ended the connection.
    """
    disconnected = client._disconnected
    try:
        sent = (
            not disconnected.done()
            and client._client.disconnect() == MQTTErrorCode.MQTT_ERR_SUCCESS
        )
        if sent:
            async with asyncio.timeout(DISCONNECT_WAIT):
                await asyncio.wait({disconnected})
    except TimeoutError:
        pass
    finally:
        close_socket(client)
        # A connection that dropped just as we were stopped: nobody asked aiomqtt
        # why, and asyncio would log "Future exception was never retrieved".
        if disconnected.done() and not disconnected.cancelled():
            disconnected.exception()


def pending_connects() -> int:
    """Connect attempts abandoned while paho's thread still runs (for tests)."""
    return len(_OPENING)
