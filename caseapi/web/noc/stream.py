"""The ``/events`` response: a Server-Sent-Events stream of one subscription.

A plain ASGI response rather than ``StreamingResponse``: it listens for the client's
disconnect itself (whatever the Starlette version does), so a closed tab frees its
stream slot at once instead of at the next heartbeat's failed write.

The wire format (https://html.spec.whatwg.org/multipage/server-sent-events.html)::

    retry: 5000            reconnect delay hint, once at the start
    : ok                   a comment: flushes the headers, so the client is "open"
    event: change
    data: {"topics": ["cases"]}
    : keep-alive           every heartbeat while nothing changes
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Final

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from caseapi.web.noc.changes import Subscription

#: What a browser waits before reconnecting after the stream broke.
RETRY_MS: Final = 5000


def change_event(topics: frozenset[str]) -> bytes:
    """The ``change`` event naming ``topics``."""
    data = json.dumps({"topics": sorted(topics)}, separators=(", ", ": "))
    return f"event: change\ndata: {data}\n\n".encode()


class EventStream(Response):
    """Sends ``subscription``'s changes until the client leaves or the feed closes."""

    media_type = "text/event-stream"

    def __init__(self, subscription: Subscription, *, heartbeat: float) -> None:
        super().__init__(
            content=None,
            headers={
                "cache-control": "no-store",
                # Proxies such as nginx must not buffer the stream.
                "x-accel-buffering": "no",
            },
        )
        # ``Response`` counts the (empty) body as the whole answer: a stream has no length.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self._subscription = subscription
        self._heartbeat = heartbeat

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with self._subscription:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            writer = asyncio.create_task(self._write(send), name="web-event-stream")
            listener = asyncio.create_task(_until_disconnect(receive), name="web-event-listen")
            try:
                await asyncio.wait((writer, listener), return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (writer, listener):
                    task.cancel()
                # Awaiting tasks we just cancelled; a client gone mid-write is expected.
                await asyncio.gather(writer, listener, return_exceptions=True)
            if writer.done() and not writer.cancelled() and writer.exception() is None:
                # The feed closed (shutdown): end the response properly.
                with contextlib.suppress(OSError):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _write(self, send: Send) -> None:
        await _chunk(send, f"retry: {RETRY_MS}\n: ok\n\n".encode())
        while True:
            topics = await self._subscription.next(self._heartbeat)
            if topics:
                await _chunk(send, change_event(topics))
            elif self._subscription.closed:
                return
            else:
                await _chunk(send, b": keep-alive\n\n")


async def _chunk(send: Send, body: bytes) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": True})


async def _until_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
