"""The console's cookies: the session's, and the sign-in form's CSRF cookie.

Both are ``HttpOnly`` (no script reads them), ``SameSite=Lax`` (not sent with
another site's form posts) and ``Path=/``; ``Secure`` when the request came over
HTTPS - directly, or through a trusted proxy (``api.trusted_proxies``) that says so
in ``X-Forwarded-Proto``. Anyone else's ``X-Forwarded-Proto`` is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Final

from fastapi import Request
from fastapi.responses import Response

from caseapi.api.client_address import IPNetwork
from caseapi.web.session import SESSION_COOKIE

#: The sign-in form's double-submit token (there is no session yet to bind it to).
LOGIN_CSRF_COOKIE: Final = "nms_login_csrf"


def served_over_https(request: Request) -> bool:
    """Whether the browser reached us over HTTPS."""
    if request.url.scheme == "https":
        return True
    proxies: Sequence[IPNetwork] = getattr(request.app.state, "trusted_proxies", ())
    peer = request.client.host if request.client is not None else None
    if not proxies or peer is None:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if not any(address in network for network in proxies):
        return False
    # The proxy nearest to us appends last.
    values = [
        v.strip().lower()
        for h in request.headers.getlist("x-forwarded-proto")
        for v in h.split(",")
    ]
    return bool(values) and values[-1] == "https"


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    """Set a console cookie (a session cookie: it ends with the browser too)."""
    response.set_cookie(
        name,
        value,
        path="/",
        httponly=True,
        samesite="lax",
        secure=served_over_https(request),
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name, path="/", httponly=True, samesite="lax", secure=served_over_https(request)
    )


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    set_cookie(request, response, SESSION_COOKIE, token)


def clear_session_cookie(request: Request, response: Response) -> None:
    clear_cookie(request, response, SESSION_COOKIE)
