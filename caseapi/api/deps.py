"""FastAPI dependencies, as ``Annotated`` aliases used in route signatures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.cases.service import CaseService
from caseapi.core.database import session_scope


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
