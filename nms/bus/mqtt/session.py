"""One aiomqtt connection: connect, subscribe, publish, disconnect - and stop cleanly.

Why this module does not use aiomqtt's ``async with`` nor its ``timeout=``
--------------------------------------------------------------------------

A stop is a cancellation of ``MqttBus.run``: its task group cancels the receive,
send and publish tasks, then the connection is closed. One CI run hung 300 s there.
The mechanism: aiomqtt bounds every wait for the broker (CONNACK, SUBACK, PUBACK, the
end of a DISCONNECT) with ``asyncio.wait_for(inner, timeout)``, and in Python 3.11
``wait_for`` *swallows a cancellation* that arrives in the loop iteration in which
``inner`` completes: it sees the cancel, finds ``inner`` done, and returns its result
instead of raising (bpo-42130, gh-86296; rewritten on top of ``asyncio.timeout`` in
3.12). The cancelled task carries on as if nothing happened. When that task is
``_transmit`` and the swallowed cancel lands as the broker's SUBACK arrives (a stop
right after a (re)connect), it goes on into its endless "take the next message"
loop; the task group waits for it forever, ``run`` never returns, and neither does
whoever stopped it. Rare - the cancel must land in the one iteration in which the ack
is processed - so it showed up once in many CI runs, and earlier mitigations (bounding
the clean-up, closing the socket) did not reach it.

The fix is structural: nothing on the bus awaits ``asyncio.wait_for`` with a timeout.
Every aiomqtt call gets ``timeout=math.inf``, for which aiomqtt's ``wait_for(x, None)``
is a plain ``await x`` that a cancellation always interrupts, and the bound is ours:
``asyncio.timeout``, built on ``Task.cancel``/``uncancel``, which lets an outside
cancellation win over its own expiry. Connect and disconnect are done here rather
than by ``Client.__aenter__``/``__aexit__`` (which wait through ``wait_for`` with the
client's default timeout), and each ends by closing the socket itself, so a stop
takes at most ``DISCONNECT_WAIT`` even when the broker is stalled or gone.

Connect runs paho's blocking ``connect`` (TCP, the TLS handshake, sending CONNECT) in
an executor thread, as aiomqtt does. A thread cannot be cancelled: a stop while it
runs returns at once and leaves a callback that closes the socket when the thread
finishes (paho bounds it by ``connect_timeout``), so no socket outlives the attempt.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Callable, Sequence
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


def mqtt_error(group: ExceptionGroup[Exception]) -> aiomqtt.MqttError:
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
