"""FastAPI dependencies every domain's routes share, as ``Annotated`` aliases.

Domain-specific ones (the case service, the maintenance service, ...) live next to
their domain's routes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.core.database import MAX_ID, session_scope

#: A row id in a path or query: larger values cannot name a row and would overflow
#: the database's integer type (a driver error, not a clear answer).
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
OptionalVersion = Annotated[int | None, Query(ge=1, le=MAX_ID)]


async def get_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    """Return the session factory given to ``create_app``."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    return sessionmaker


SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]


async def get_session(sessionmaker: SessionmakerDep) -> AsyncIterator[AsyncSession]:
    """Yield a read session for one request (connected up front, so outages are 503)."""
    async with session_scope(sessionmaker, reads=True) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
