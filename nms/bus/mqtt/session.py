"""One aiomqtt connection: connect, subscribe and disconnect without leaking a socket.

aiomqtt 2.x is used through ``async with``; these helpers call its enter and exit
themselves so that a failed or cancelled attempt always closes what it opened, and a
stop never hangs on a broker that does not answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiomqtt
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions


async def subscribe(client: aiomqtt.Client, filters: Sequence[str], *, ack_timeout: float) -> None:
    """Subscribe to ``filters`` at QoS 1.

    Raises:
        aiomqtt.MqttError: the broker refused one of them (named in the message).
    """
    if not filters:
        return
    # "If new": a persistent session that survived gets no second copy of the
    # retained messages; a clean session always gets the current ones.
    options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
    codes = await client.subscribe([(f, options) for f in filters], timeout=ack_timeout)
    results: list[int | ReasonCode] = list(codes)
    refused = [
        f"{f} ({code})"
        for f, code in zip(filters, results, strict=False)
        if (code.value if isinstance(code, ReasonCode) else code) >= 0x80
    ]
    if refused:
        raise aiomqtt.MqttError(f"the broker refused the subscription to {', '.join(refused)}")


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


async def connect(client: aiomqtt.Client) -> None:
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
            await disconnect(client)
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


async def disconnect(client: aiomqtt.Client) -> None:
    """``client.__aexit__``, bounded; closes the socket itself if that fails."""
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
