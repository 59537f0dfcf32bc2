"""``/login`` and ``/logout``.

The sign-in form is protected against login CSRF (another site signing the browser
in to the attacker's account) with a double-submit token: ``GET /login`` sets a
random ``nms_login_csrf`` cookie and puts the same value in the form; ``POST /login``
refuses a form whose field and cookie differ. Another site can neither read the
cookie nor set it (``SameSite=Lax``, ``HttpOnly``).

Then, in this order: the rate limits (``login_failures_per_address`` /
``_per_account``: a blocked address or account is refused before the password is
even looked at), the password, a new session (a fresh token: a token the browser
brought is never adopted), and a 303 to ``next`` if it is a local path.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from caseapi.api.client_address import request_client_address
from caseapi.ratelimit.errors import RateLimitedError
from caseapi.ratelimit.service import RateLimiter
from caseapi.users.errors import LoginFailedError
from caseapi.users.service import UserService
from caseapi.users.sessions import DatabaseSessionStore
from caseapi.web.auth.cookies import (
    LOGIN_CSRF_COOKIE,
    clear_session_cookie,
    set_cookie,
    set_session_cookie,
)
from caseapi.web.deps import AnyForm
from caseapi.web.errors import LOGIN_PATH, safe_next
from caseapi.web.render import render
from caseapi.web.session import CSRF_FIELD, SESSION_COOKIE

router = APIRouter(include_in_schema=False)

FORM_EXPIRED = "The sign-in form expired or did not come from this site. Please sign in again."


def users_of(request: Request) -> UserService:
    service: UserService = request.app.state.user_service
    return service


def database_store(request: Request) -> DatabaseSessionStore:
    store = request.app.state.web_sessions
    if not isinstance(store, DatabaseSessionStore):
        raise RuntimeError("signing in needs the database session store")
    return store


def _login_page(
    request: Request,
    *,
    next_path: str,
    email: str = "",
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    # One token per browser: reused while its cookie lives, so two tabs both work.
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if len(token) < 32 or len(token) > 128:
        token = secrets.token_urlsafe(32)
    response = render(
        request,
        "auth/login.html",
        {
            "next": next_path,
            "email": email,
            "error": error,
            "login_csrf": token,
            "csrf_field_name": CSRF_FIELD,
        },
        status_code=status,
    )
    set_cookie(request, response, LOGIN_CSRF_COOKIE, token)
    return response


@router.get(LOGIN_PATH)
async def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    """The sign-in form."""
    return _login_page(request, next_path=safe_next(next))


@router.post(LOGIN_PATH)
async def login(
    request: Request,
    email: Annotated[str, Form(max_length=1000)] = "",
    password: Annotated[str, Form(max_length=4096)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Check the e-mail and password; on success a new session and a 303 to ``next``."""
    target = safe_next(next)
    email = email.strip()
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if (
        not cookie
        or not csrf_token
        or not hmac.compare_digest(cookie.encode(), csrf_token.encode())
    ):
        return _login_page(request, next_path=target, email=email, error=FORM_EXPIRED, status=403)
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    address = request_client_address(request)
    account = email.lower()[:320]
    try:
        if limiter is not None:
            await limiter.check_login(address=address, account=account)
    except RateLimitedError as exc:
        response = _login_page(
            request,
            next_path=target,
            email=email,
            error=f"Too many attempts; try again in {exc.retry_after} seconds.",
            status=429,
        )
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    try:
        user = await users_of(request).authenticate(email, password)
    except LoginFailedError as exc:
        if limiter is not None:
            await limiter.login_failed(address=address, account=account)
        return _login_page(request, next_path=target, email=email, error=str(exc), status=401)
    store = database_store(request)
    # The browser's previous session (if any) ends: one browser, one session.
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:
        await store.revoke(previous)
    token, _ = await store.open(user)
    signed_in = RedirectResponse(target, status_code=303)
    set_session_cookie(request, signed_in, token)
    return signed_in


@router.post("/logout")
async def logout(request: Request, web: AnyForm) -> RedirectResponse:
    """End this session (``user.logout`` in the audit log) and go to the sign-in form."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await request.app.state.web_sessions.revoke(token)
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    clear_session_cookie(request, response)
    return response
