"""Security and caching headers of the console's responses (ASGI middleware).

Every page: a strict Content-Security-Policy (our own scripts and styles only, no
inline script, no framing), ``X-Frame-Options: DENY``, ``nosniff``, a same-origin
referrer, and ``Cache-Control: no-store`` (pages show one person's cases: no shared
or back-button cache may keep them). The API's responses are left as they are.
"""

from __future__ import annotations

from typing import Final

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from caseapi.web.paths import STATIC_PREFIX, is_page_path

CONTENT_SECURITY_POLICY: Final = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

PAGE_HEADERS: Final = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}
#: Our own scripts and styles may be cached, but revalidated (they change with releases).
STATIC_HEADERS: Final = {
    "x-content-type-options": "nosniff",
    "cache-control": "no-cache",
}


class PageHeaders:
    """Adds the headers above to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(STATIC_PREFIX):
            extra = STATIC_HEADERS
        elif is_page_path(path):
            extra = PAGE_HEADERS
        else:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
