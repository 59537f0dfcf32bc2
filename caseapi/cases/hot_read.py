"""``GET /v1/cases/{ref}`` outside FastAPI's request machinery: the hottest read.

Customer portals and scripts poll their cases one by one. Routing the read through
FastAPI (matching some 200 routes, solving the dependencies, validating the path
parameter, the exception middleware) costs about as much as the read itself.
``HotCaseRead`` is an ASGI middleware that answers the plain, successful read itself:
a ``GET`` of ``/v1/cases/<ref>`` without a query string or body, with a bearer key
``get_principal`` admits, of a case the caller may see. It asks the same services
and builds the same response (``detail_response``), so the bytes are the route's.

Everything else - another path or method, a query string (the route refuses
undeclared parameters), a body, a missing, refused or rate-limited key, an unknown
case, a database error - goes to the app untouched, before anything is sent: every
error answer, every count of a failed key and the OpenAPI document stay the route's,
written once. A request handed over after a failed attempt is answered as if the
lane were not there (the failed key is counted by the route, once).
"""

from __future__ import annotations

import logging
import re
from typing import Final

from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import State
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from caseapi.api.client_address import client_address
from caseapi.auth.deps import admitted_principal
from caseapi.cases.routes import detail_response
from caseapi.cases.service import CaseService
from caseapi.core.errors import CaseApiError

logger = logging.getLogger(__name__)

#: The one path this lane serves; ``ref`` as Starlette's ``{ref}`` matches it.
PATH: Final = re.compile(r"/v1/cases/([^/]+)")

#: What a failed attempt may raise; the route meets the same and answers it (401, 404,
#: 429, 503). Anything else is a bug and propagates.
_HANDED_OVER: Final = (CaseApiError, SQLAlchemyError, OSError, TimeoutError)


class HotCaseRead:
    """Serves the plain one-case read; hands every other request to ``app``."""

    def __init__(self, app: ASGIApp, *, state: State) -> None:
        """Wrap ``app``, whose ``state`` holds the services (``create_app``'s)."""
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope["query_string"]:
            match = PATH.fullmatch(scope["path"])
            if match is not None:
                response = await self._answer(scope, match.group(1))
                if response is not None:
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, ref: str) -> Response | None:
        """The route's 200 for ``ref``, or ``None`` when the route must answer."""
        if "\x00" in ref:  # the route's guard refuses it (422)
            return None
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
            detail = await service.get_case_detail_for(principal, ref)
        except _HANDED_OVER as exc:
            logger.debug("GET /v1/cases/%s handed to the route: %r", ref, exc)
            return None
        return detail_response(principal, detail)


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
