"""The request body size limit: refused with 413 before it is read, not after.

Without it a 50 MB body is read and parsed in full before the 422 that refuses it.
``BodyLimit`` is pure ASGI around the app:

- a ``Content-Length`` above the limit is answered 413 at once (nothing is read);
- a body without one (chunked) is counted as it arrives and refused as soon as it
  passes the limit: ``receive`` raises Starlette's ``HTTPException(413)``, which
  FastAPI passes through its body parsing and the app renders as a problem.

Both answers are the same RFC 9457 problem, code ``request_entity_too_large``.

A route that takes larger bodies (file uploads) gets its own limit and code from a
``RouteLimit`` (method and path pattern), enforced the same way: the table is
consulted before anything is read, so no route is ever unbounded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Final

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from caseapi.core.config import DEFAULT_MAX_BODY

CODE: Final = "request_entity_too_large"


def _detail(limit: int) -> str:
    return f"the request body is larger than the limit of {limit} bytes"


@dataclass(frozen=True, slots=True)
class RouteLimit:
    """The body limit of one route instead of the app's, and the code refusing it."""

    method: str
    #: Matched against the whole request path (``re.fullmatch``).
    path: re.Pattern[str]
    max_bytes: int
    code: str = CODE

    def matches(self, scope: Scope) -> bool:
        return scope.get("method") == self.method and bool(
            self.path.fullmatch(scope.get("path", ""))
        )


class BodyTooLargeError(HTTPException):
    """A chunked body passed its limit while being read (``code`` for the problem)."""

    def __init__(self, *, max_bytes: int, code: str) -> None:
        super().__init__(413, detail=_detail(max_bytes), headers={"Connection": "close"})
        self.max_bytes = max_bytes
        self.code = code


class BodyLimit:
    """ASGI middleware refusing request bodies over ``max_bytes`` with 413."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int = DEFAULT_MAX_BODY,
        routes: Sequence[RouteLimit] = (),
    ) -> None:
        if max_bytes < 1 or any(route.max_bytes < 1 for route in routes):
            raise ValueError(f"max_bytes must be positive, not {max_bytes}")
        self.app = app
        self.max_bytes = max_bytes
        self.routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = next((route for route in self.routes if route.matches(scope)), None)
        limit, code = (route.max_bytes, route.code) if route else (self.max_bytes, CODE)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(scope, send, limit=limit, code=code)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLargeError(max_bytes=limit, code=code)
            return message

        await self.app(scope, counted, send)

    async def _refuse(self, scope: Scope, send: Send, *, limit: int, code: str) -> None:
        body = json.dumps(
            {
                "type": "about:blank",
                "title": HTTPStatus(413).phrase,
                "status": 413,
                "detail": _detail(limit),
                "code": code,
                "instance": scope.get("path", ""),
                "max_bytes": limit,
            }
        ).encode()
        headers = [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
            # The client may still be sending: tell it we will not read the rest.
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed header itself
    return None
