"""Authentication and role dependencies for routes.

``CurrentPrincipal`` authenticates the ``Authorization: Bearer <key>`` header;
``require_roles(...)`` builds a dependency that also checks the role. Use them as::

    @router.get("/x")
    async def x(principal: CurrentPrincipal) -> ...

    @router.post("/y")
    async def y(principal: Annotated[Principal, Depends(require_roles(Role.ADMIN))]) -> ...

or the ready-made aliases ``StaffPrincipal`` and ``AdminPrincipal``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from caseapi.api.openapi import raises
from caseapi.auth.errors import AuthenticationError, PermissionDeniedError
from caseapi.auth.principal import STAFF_ROLES, Principal, Role
from caseapi.auth.service import ApiKeyService

# auto_error=False: a missing header must become our 401 problem, not FastAPI's 403.
_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer nms_...`")


def get_apikey_service(request: Request) -> ApiKeyService:
    """Return the API key service built by ``create_app``."""
    service: ApiKeyService = request.app.state.apikey_service
    return service


ApiKeyServiceDep = Annotated[ApiKeyService, Depends(get_apikey_service)]


async def get_principal(
    service: ApiKeyServiceDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Authenticate the request's bearer key.

    Raises:
        AuthenticationError: No bearer key, or an unknown, expired or revoked one
            (401 ``unauthenticated`` with ``WWW-Authenticate: Bearer``).
    """
    if credentials is None:
        raise AuthenticationError("no bearer credentials")
    return await service.authenticate(credentials.credentials)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


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
