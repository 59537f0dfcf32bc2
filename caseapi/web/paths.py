"""Which requests are pages (HTML answers, redirects to the login) and which are API.

The API keeps its RFC 9457 problem bodies; everything else the app serves is the
console, whose errors are HTML pages. Decided by path so that it holds for unknown
URLs and for errors raised before any route ran.
"""

from __future__ import annotations

from typing import Final

from starlette.requests import HTTPConnection

#: Served by the API and the app's own machinery, never as pages.
API_PREFIXES: Final = ("/v1/", "/docs", "/redoc", "/openapi.json", "/healthz", "/metrics")
STATIC_PREFIX: Final = "/static/"


def is_page_path(path: str) -> bool:
    """Whether ``path`` belongs to the console (``/``, ``/login``, ``/cases/...``)."""
    return not (path == "/v1" or path.startswith(API_PREFIXES) or path.startswith(STATIC_PREFIX))


def is_page(connection: HTTPConnection) -> bool:
    """Whether the request asked for a console page."""
    return is_page_path(connection.url.path)
