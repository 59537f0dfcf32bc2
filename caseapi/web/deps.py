"""Page dependencies: who is signed in, their role, and the CSRF check of forms.

Use them as ``Annotated`` aliases::

    @router.get("/cases/{ref}")
    async def case_page(request: Request, web: StaffPage, ref: str) -> HTMLResponse: ...

    @router.post("/cases/{ref}/take")
    async def take(request: Request, web: StaffForm, ref: str) -> Response: ...

``...Page`` reads the session cookie (no session: a redirect to the login); ``...Form``
also requires the form's ``csrf_token`` field (or an ``X-CSRF-Token`` header, for the
console's own scripts) to be this session's token - every state-changing route takes a
``...Form``. A signed-in person whose role the page is not for gets the 403 page; a
case, NTU or RFO of another customer is the same 404 page as one that does not exist
(the services' own tenancy check, as for the API).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from caseapi.audit.context import bind_principal
from caseapi.auth.errors import PermissionDeniedError
from caseapi.auth.principal import STAFF_ROLES, Role
from caseapi.web.errors import CsrfRejectedError, LoginRequiredError
from caseapi.web.session import CSRF_FIELD, SESSION_COOKIE, SessionStore, WebSession

CSRF_HEADER = "X-CSRF-Token"


async def get_session_store(request: Request) -> SessionStore:
    """The app's session store (``app.state.web_sessions``)."""
    store: SessionStore = request.app.state.web_sessions
    return store


SessionStoreDep = Annotated[SessionStore, Depends(get_session_store)]


async def get_web_session(request: Request, store: SessionStoreDep) -> WebSession:
    """The signed-in person of this request.

    Raises:
        LoginRequiredError: No session cookie, or its session is unknown, expired or
            revoked (the page answers with a redirect to the login).
    """
    token = request.cookies.get(SESSION_COOKIE)
    session = await store.lookup(token) if token else None
    if session is None:
        raise LoginRequiredError("sign in to see this page")
    request.state.web_session = session
    # Audit rows written by this request name the person (caseapi.audit.context).
    bind_principal(session.principal)
    return session


AnyPage = Annotated[WebSession, Depends(get_web_session)]


def require_page_roles(*roles: Role) -> Callable[[WebSession], Awaitable[WebSession]]:
    """A dependency admitting only people with one of ``roles`` (else the 403 page)."""
    if not roles:
        raise ValueError("require_page_roles needs at least one role")
    allowed = frozenset(roles)

    async def dependency(session: AnyPage) -> WebSession:
        if session.principal.role not in allowed:
            raise PermissionDeniedError("this page is not for your role")
        return session

    return dependency


StaffPage = Annotated[WebSession, Depends(require_page_roles(*STAFF_ROLES))]
CustomerPage = Annotated[WebSession, Depends(require_page_roles(Role.CUSTOMER))]
AdminPage = Annotated[WebSession, Depends(require_page_roles(Role.ADMIN))]


async def check_csrf(request: Request, session: WebSession) -> None:
    """Raise ``CsrfRejectedError`` unless the request carries ``session``'s token."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if sent is None or not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
        raise CsrfRejectedError("the form is out of date or did not come from this site")


def csrf_checked(
    page: Callable[..., Awaitable[WebSession]],
) -> Callable[[Request, WebSession], Awaitable[WebSession]]:
    """A form dependency: ``page``'s session, after the CSRF check."""

    # ``Depends`` as the default, not in ``Annotated``: this module's annotations are
    # strings, and FastAPI resolves them in the module, where ``page`` does not exist.
    async def dependency(request: Request, session: WebSession = Depends(page)) -> WebSession:  # noqa: B008
        await check_csrf(request, session)
        return session

    return dependency


AnyForm = Annotated[WebSession, Depends(csrf_checked(get_web_session))]
StaffForm = Annotated[WebSession, Depends(csrf_checked(require_page_roles(*STAFF_ROLES)))]
CustomerForm = Annotated[WebSession, Depends(csrf_checked(require_page_roles(Role.CUSTOMER)))]
AdminForm = Annotated[WebSession, Depends(csrf_checked(require_page_roles(Role.ADMIN)))]
