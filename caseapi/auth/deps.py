"""Authentication and role dependencies for routes.

``CurrentPrincipal`` authenticates the ``Authorization: Bearer <key>`` header;
``require_roles(...)`` builds a dependency that also checks the role. Use them as::

    @router.get("/x")
    async def x(principal: CurrentPrincipal) -> ...

    @router.post("/y")
    async def y(principal: Annotated[Principal, Depends(require_roles(Role.ADMIN))]) -> ...

or the ready-made aliases ``StaffPrincipal`` and ``AdminPrincipal``.

With a ``RateLimiter`` in ``app.state.rate_limiter``, an address or key prefix that
failed too often is refused (429) before its key is checked, and every failure with
a presented key is counted (``caseapi.ratelimit.service``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import State

from caseapi.api.client_address import request_client_address
from caseapi.api.openapi import raises
from caseapi.audit.context import bind_principal
from caseapi.auth.errors import AuthenticationError, PermissionDeniedError
from caseapi.auth.principal import STAFF_ROLES, Principal, Role
from caseapi.auth.service import KEY_SCHEME, PREFIX_LENGTH, ApiKeyService
from caseapi.ratelimit.errors import RateLimitedError
from caseapi.ratelimit.service import Limit, RateLimiter

# auto_error=False: a missing header must become our 401 problem, not FastAPI's 403.
_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer nms_...`")


async def get_apikey_service(request: Request) -> ApiKeyService:
    """Return the API key service built by ``create_app``."""
    service: ApiKeyService = request.app.state.apikey_service
    return service


ApiKeyServiceDep = Annotated[ApiKeyService, Depends(get_apikey_service)]


async def get_rate_limiter(request: Request) -> RateLimiter | None:
    """Return the app's rate limiter (``None``: no limits, as in most tests)."""
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    return limiter


RateLimiterDep = Annotated[RateLimiter | None, Depends(get_rate_limiter)]


async def charge_customer(limiter: RateLimiter | None, limit: Limit, principal: Principal) -> None:
    """Count one use of the per-customer ``limit`` by a customer key.

    Staff and service keys are not limited: they act for every customer.

    Raises:
        RateLimitedError: The customer used ``limit`` up (429 with ``Retry-After``).
    """
    if limiter is not None and principal.customer_id is not None:
        await limiter.acquire(limit, principal.customer_id)


def key_prefix(secret: str) -> str | None:
    """The public prefix of a presented key, if it is shaped like one of ours."""
    if secret.startswith(KEY_SCHEME) and len(secret) > PREFIX_LENGTH:
        return secret[:PREFIX_LENGTH]
    return None


@raises(RateLimitedError)
async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Authenticate the request's bearer key.

    The key service, the rate limiter and the client address come from the request
    itself, not from dependencies of their own: every authenticated request runs this,
    and FastAPI's cost per dependency is of the order of the key check itself.

    Raises:
        RateLimitedError: The address or the key prefix failed too often (429
            ``rate_limited`` with ``Retry-After``); the key was not checked.
        AuthenticationError: No bearer key, or an unknown, expired or revoked one
            (401 ``unauthenticated`` with ``WWW-Authenticate: Bearer``).
    """
    state = request.app.state
    service: ApiKeyService = state.apikey_service
    limiter: RateLimiter | None = getattr(state, "rate_limiter", None)
    address = request_client_address(request) if limiter is not None else ""
    prefix = key_prefix(credentials.credentials) if credentials is not None else None
    if limiter is not None:
        await limiter.check_authentication(address=address, key_prefix=prefix)
    if credentials is None:
        raise AuthenticationError("no bearer credentials")
    try:
        principal = await service.authenticate(credentials.credentials)
    except AuthenticationError:
        if limiter is not None:
            await limiter.authentication_failed(address=address, key_prefix=prefix)
        raise
    # Every authenticated route's audit rows name this caller (caseapi.audit.context).
    bind_principal(principal)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def admitted_principal(state: State, *, secret: str, address: str) -> Principal | None:
    """The caller ``get_principal`` would admit with the bearer key ``secret`` from
    ``address``; ``None`` where it would refuse, with nothing counted or raised.

    For a fast lane that answers outside FastAPI's routing (``caseapi.cases.hot_read``)
    and hands the request it cannot serve to the app: ``get_principal`` then refuses
    it (401, 429) and counts the failure, once.
    """
    service: ApiKeyService = state.apikey_service
    limiter: RateLimiter | None = getattr(state, "rate_limiter", None)
    if limiter is not None and not await limiter.authentication_allowed(
        address=address, key_prefix=key_prefix(secret)
    ):
        return None
    try:
        principal = await service.authenticate(secret)
    except AuthenticationError:
        return None
    bind_principal(principal)
    return principal


def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """Build a dependency that admits only callers with one of ``roles``.

    Raises (from the dependency):
        AuthenticationError: As ``get_principal``.
        PermissionDeniedError: The caller's role is not in ``roles`` (403 ``forbidden``).
    """
    if not roles:
        raise ValueError("require_roles needs at least one role")
    allowed = frozenset(roles)

    @raises(PermissionDeniedError)
    async def dependency(principal: CurrentPrincipal) -> Principal:
        if principal.role not in allowed:
            raise PermissionDeniedError(
                f"role {principal.role.value!r} may not do this; "
                f"allowed: {', '.join(sorted(role.value for role in allowed))}"
            )
        return principal

    return dependency


StaffPrincipal = Annotated[Principal, Depends(require_roles(*STAFF_ROLES))]
AdminPrincipal = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
#: Customers and staff: people who work or follow cases (not ``service`` callers).
CaseParticipant = Annotated[Principal, Depends(require_roles(Role.CUSTOMER, *STAFF_ROLES))]
