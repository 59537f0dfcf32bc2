"""The hottest case reads outside FastAPI's request machinery.

Customer portals and scripts poll their cases: one by one (``GET /v1/cases/{ref}``)
and page by page (``GET /v1/cases``). Routing a read through FastAPI (matching some
200 routes, solving the dependencies, parsing and validating every declared query
parameter, the exception middleware) costs about as much as the read itself.
``HotCaseRead`` is an ASGI middleware that answers the plain, successful reads itself,
with a bearer key ``get_principal`` admits and no body:

- ``GET /v1/cases/<ref>`` without a query string, of a case the caller may see;
- ``GET /v1/cases`` with no query parameter but ``limit`` (a plain number in range)
  and ``cursor``, each at most once: the unfiltered listing, page by page.

It asks the same services and builds the same responses (``detail_response``,
``page_response``), so the bytes are the routes'.

Everything else - another path or method, any other query parameter or value (the
routes validate them, refuse undeclared ones), a body, a missing, refused or
rate-limited key, an unknown case, a bad cursor, a database error - goes to the app
untouched, before anything is sent: every error answer, every count of a failed key
and the OpenAPI document stay the routes', written once. A request handed over after
a failed attempt is answered as if the lane were not there (the failed key is counted
by the route, once).
"""

from __future__ import annotations

import logging
import re
from typing import Final
from urllib.parse import parse_qsl

from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import State
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from caseapi.api.client_address import client_address
from caseapi.auth.deps import admitted_principal
from caseapi.cases.repository import CaseFilters
from caseapi.cases.routes import (
    CURSOR_LENGTH,
    PAGE_SIZE,
    detail_response,
    page_response,
)
from caseapi.cases.service import MAX_PAGE_SIZE, CaseService
from caseapi.core.errors import CaseApiError

logger = logging.getLogger(__name__)

#: The one-case read's path; ``ref`` as Starlette's ``{ref}`` matches it.
PATH: Final = re.compile(r"/v1/cases/([^/]+)")
LIST_PATH: Final = "/v1/cases"
#: A ``limit`` the lane takes as it is: a decimal number without sign, blank or zeros
#: in front (any other form that FastAPI would read is the route's).
_LIMIT: Final = re.compile(r"[1-9][0-9]{0,5}")

#: What a failed attempt may raise; the route meets the same and answers it (401, 404,
#: 429, 503). Anything else is a bug and propagates.
_HANDED_OVER: Final = (CaseApiError, SQLAlchemyError, OSError, TimeoutError)


class HotCaseRead:
    """Serves the plain case reads; hands every other request to ``app``."""

    def __init__(self, app: ASGIApp, *, state: State) -> None:
        """Wrap ``app``, whose ``state`` holds the services (``create_app``'s)."""
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            response = await self._answer(scope)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope) -> Response | None:
        """The route's 200 for ``scope``, or ``None`` when the route must answer."""
        path: str = scope["path"]
        if path == LIST_PATH:
            query = _page_query(scope["query_string"])
            if query is None:
                return None
            ref = None
        else:
            match = PATH.fullmatch(path)
            # A query string, or NUL (the route's guard refuses both: 422).
            if match is None or scope["query_string"] or "\x00" in match.group(1):
                return None
            ref, query = match.group(1), None
        secret, forwarded_for = _read_headers(scope)
        if secret is None:
            return None
        state = self.state
        client = scope.get("client")
        address = client_address(
            client[0] if client else None, forwarded_for, trusted_proxies=state.trusted_proxies
        )
        service: CaseService = state.case_service
        try:
            principal = await admitted_principal(state, secret=secret, address=address)
            if principal is None:
                return None
            if ref is not None:
                return detail_response(principal, await service.get_case_detail_for(principal, ref))
            assert query is not None
            limit, cursor = query
            # No filter: the service limits a customer to its own cases.
            filters = CaseFilters()
            return await page_response(service, principal, filters, cursor=cursor, limit=limit)
        except _HANDED_OVER as exc:
            logger.debug("GET %s handed to the route: %r", path, exc)
            return None


def _page_query(query_string: bytes) -> tuple[int, str | None] | None:
    """``limit`` and ``cursor`` of a plain listing's query; ``None`` for any other."""
    limit, cursor, seen = PAGE_SIZE, None, set()
    # As Starlette reads a query string.
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name in seen:
            return None
        seen.add(name)
        if name == "limit" and _LIMIT.fullmatch(value) and int(value) <= MAX_PAGE_SIZE:
            limit = int(value)
        elif name == "cursor" and 0 < len(value) <= CURSOR_LENGTH and "\x00" not in value:
            cursor = value
        else:
            return None
    return limit, cursor


def _read_headers(scope: Scope) -> tuple[str | None, list[str]]:
    """The bearer key (``None``: none, or a request the lane leaves to the route) and
    the ``X-Forwarded-For`` values."""
    authorization: list[bytes] = []
    forwarded_for: list[str] = []
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization.append(value)
        elif name == b"x-forwarded-for":
            forwarded_for.append(value.decode("latin-1"))
        elif name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return None, forwarded_for  # a body: the route's guard reads it
    if len(authorization) != 1:
        return None, forwarded_for
    # As FastAPI's ``HTTPBearer``: "<scheme> <credentials>", the scheme in any case.
    scheme, _, credentials = authorization[0].decode("latin-1").partition(" ")
    secret = credentials.strip()
    if scheme.lower() != "bearer" or not secret:
        return None, forwarded_for
    return secret, forwarded_for
