"""The console's errors and its error pages.

A page never shows a traceback: domain errors become a page that says what was wrong
(the same words the API's problem ``detail`` carries), a missing or expired session a
redirect to the login that comes back to the page asked for, anything unexpected a
plain 500 page (the details go to the log).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import quote

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import URL
from starlette.exceptions import HTTPException as StarletteHTTPException

from caseapi.core.errors import CaseApiError, NotFoundError

logger = logging.getLogger(__name__)

LOGIN_PATH: Final = "/login"


class LoginRequiredError(CaseApiError):
    """No live session: the page asked for needs one (a redirect to the login)."""

    code = "login_required"


class CsrfRejectedError(CaseApiError):
    """A state-changing form came without this session's CSRF token, or another one."""

    code = "csrf_rejected"
    http_status = 403


def login_redirect(request: Request) -> RedirectResponse:
    """303 to the login, which sends the person back to this page (GET) afterwards."""
    url = request.url
    if request.method != "GET":
        # After a login, a form cannot be posted again: back to the page it was on.
        url = URL(request.headers.get("referer", "/"))
    target = safe_next(url.path + ("?" + url.query if url.query else ""))
    if target == "/":
        return RedirectResponse(LOGIN_PATH, status_code=303)
    return RedirectResponse(f"{LOGIN_PATH}?next={quote(target, safe='/')}", status_code=303)


def safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site, else ``/`` (no open redirect).

    The login's ``next`` comes from the URL anyone can craft: only a local absolute
    path is followed (not ``//host``, not ``/\\host``, no scheme, no control characters).
    """
    if (
        not target
        or not target.startswith("/")
        or target.startswith(("//", "/\\"))
        or any(ord(char) < 0x20 or char == "\\" for char in target)
        or len(target) > 2000
    ):
        return "/"
    return target


def status_of(exc: Exception) -> int:
    """The HTTP status a page shows for ``exc`` (500 for anything unexpected)."""
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code
    status = getattr(exc, "http_status", None)
    return status if isinstance(status, int) else 500


def message_of(exc: Exception, status: int) -> str:
    """What the page says: the domain's own words, never a stack trace."""
    if status == 404:
        # One message for "does not exist" and "not yours": a customer must not learn
        # that another customer's case exists.
        return "The page or the case you asked for does not exist, or is not yours to see."
    if status == 503:
        return "The service cannot reach its database for a moment. Please retry shortly."
    if status == 422 and isinstance(exc, RequestValidationError):
        return "; ".join(_field_error(error) for error in exc.errors()) or "The form is not valid."
    if status >= 500:
        return "Something went wrong on our side. It has been logged; please try again."
    if isinstance(exc, StarletteHTTPException) and isinstance(exc.detail, str):
        return exc.detail
    if isinstance(exc, CaseApiError) and str(exc):
        return str(exc)
    return HTTPStatus(status).description


def _field_error(error: Mapping[str, Any]) -> str:
    where = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
    return f"{'.'.join(where) or 'form'}: {error.get('msg', 'invalid')}"


async def page_error(request: Request, exc: Exception, *, status: int | None = None) -> Response:
    """The page for ``exc`` raised while serving a console request.

    Args:
        request: The console request.
        exc: What was raised.
        status: The status the API gives this kind of error, where the exception
            does not carry one (422 for validation, 503 for a database outage).
    """
    # Imported here: rendering needs the templates, errors are imported everywhere.
    from caseapi.web.render import render

    if isinstance(exc, LoginRequiredError):
        return login_redirect(request)
    status = status or status_of(exc)
    if status == 500:
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    headers = getattr(exc, "http_headers", None) if status != 405 else None
    response = render(
        request,
        "error.html",
        {
            "status": status,
            "title": HTTPStatus(status).phrase,
            "message": message_of(exc, status),
        },
        status_code=status,
    )
    for name, value in dict(headers or {}).items():
        response.headers[name] = value
    return response
