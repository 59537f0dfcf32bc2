"""FastAPI dependencies of the case routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from caseapi.cases.service import CaseService


async def get_case_service(request: Request) -> CaseService:
    """Return the case service given to (or built by) ``create_app``."""
    service: CaseService = request.app.state.case_service
    return service


CaseServiceDep = Annotated[CaseService, Depends(get_case_service)]
