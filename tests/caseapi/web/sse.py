"""Reading the console's ``/events`` stream in tests, straight over ASGI.

httpx's ASGI transport returns a response only once its body is complete, which a
live stream never is; this drives the app with our own ``receive`` / ``send`` and
hands over the body chunks as they are sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from starlette.types import Message

from caseapi.web.session import SESSION_COOKIE
from tests.caseapi.web.pages import Browser


@dataclass
class Stream:
    """An open ``/events`` response."""

    status: int
    headers: dict[str, str]
    chunks: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    ended: bool = False

    async def next_chunk(self, within: float) -> bytes | None:
        """The next body chunk; ``None`` when the response ended."""
        async with asyncio.timeout(within):
            return await self.chunks.get()

    async def next_change(self, within: float) -> list[str]:
        """The topics of the next ``change`` event (heartbeats are skipped)."""
        async with asyncio.timeout(within):
            while True:
                chunk = await self.chunks.get()
                assert chunk is not None, "the stream ended"
                text = chunk.decode()
                if text.startswith("event: change\n"):
                    data = text.split("data: ", 1)[1].strip()
                    topics: list[str] = json.loads(data)["topics"]
                    return topics

    async def no_change_within(self, seconds: float) -> None:
        """Assert that only comments (heartbeats) arrive for ``seconds``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while True:
                    chunk = await self.chunks.get()
                    assert chunk is not None and chunk.startswith(b":"), chunk


def token_of(browser: Browser) -> str:
    token = browser.client.cookies.get(SESSION_COOKIE)
    assert token is not None
    return token


@contextlib.asynccontextmanager
async def open_stream(app: FastAPI, token: str | None) -> AsyncIterator[Stream]:
    """``GET /events`` with the session ``token``; the client disconnects at the end."""
    headers = [(b"host", b"test")]
    if token is not None:
        headers.append((b"cookie", f"{SESSION_COOKIE}={token}".encode()))
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/events",
        "raw_path": b"/events",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
    }
    disconnect = asyncio.Event()
    started: asyncio.Future[Stream] = asyncio.get_running_loop().create_future()
    stream: Stream | None = None

    requested = False

    async def receive() -> Message:
        nonlocal requested
        if not requested:  # the (empty) request body first, then the wait
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal stream
        if message["type"] == "http.response.start":
            stream = Stream(
                status=message["status"],
                headers={k.decode(): v.decode() for k, v in message.get("headers", [])},
            )
            started.set_result(stream)
        elif message["type"] == "http.response.body":
            assert stream is not None
            if message.get("body"):
                stream.chunks.put_nowait(message["body"])
            if not message.get("more_body", False):
                stream.ended = True
                stream.chunks.put_nowait(None)

    task = asyncio.create_task(app(scope, receive, send))
    try:
        async with asyncio.timeout(5):
            yield await started
    finally:
        disconnect.set()
        async with asyncio.timeout(5):
            await task
