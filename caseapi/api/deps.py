"""FastAPI dependencies, as ``Annotated`` aliases used in route signatures."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.cases.errors import CaseValidationError
from caseapi.cases.service import CaseService
from caseapi.core.database import MAX_ID, session_scope

#: A row id in a path or query: larger values cannot name a row and would overflow
#: the database's integer type (a driver error, not a clear answer).
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
OptionalVersion = Annotated[int | None, Query(ge=1, le=MAX_ID)]


def get_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    """Return the session factory given to ``create_app``."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    return sessionmaker


SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]


async def get_session(sessionmaker: SessionmakerDep) -> AsyncIterator[AsyncSession]:
    """Yield a read session for one request (connected up front, so outages are 503)."""
    async with session_scope(sessionmaker) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def get_case_service(request: Request) -> CaseService:
    """Return the case service given to (or built by) ``create_app``."""
    service: CaseService = request.app.state.case_service
    return service


CaseServiceDep = Annotated[CaseService, Depends(get_case_service)]


async def reject_nul_characters(request: Request) -> None:
    """Refuse NUL characters anywhere in the path, query or JSON body (422).

    PostgreSQL text cannot hold them (the driver fails: a 500), SQLite would store
    them, and no legitimate field needs one; so every backend refuses them alike.
    Mounted on the whole app.

    Raises:
        CaseValidationError: Names the parameter or ``body`` that held one.
    """
    for name, value in request.path_params.items():
        if "\x00" in str(value):
            raise CaseValidationError(name, "must not contain NUL characters")
    for name, value in request.query_params.multi_items():
        if "\x00" in name or "\x00" in value:
            raise CaseValidationError(name, "must not contain NUL characters")
    body = await request.body()
    # JSON writes NUL as the escape \u0000; parse only when one might be there.
    if b"\x00" in body or (b"u0000" in body and _holds_nul(_json(body))):
        raise CaseValidationError("body", "must not contain NUL characters")


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None  # not JSON: the route's own parsing answers that


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False
