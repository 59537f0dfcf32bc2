"""Mounting the console on the app: its routers, static files, headers, error pages."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from caseapi.web.auth.routes import router as auth_router
from caseapi.web.deps import AnyPage
from caseapi.web.headers import PageHeaders
from caseapi.web.noc.routes import install as install_noc
from caseapi.web.noc.routes import router as noc_router
from caseapi.web.portal.routes import router as portal_router
from caseapi.web.session import MemorySessionStore, SessionStore
from caseapi.web.workspace.routes import router as workspace_router

STATIC: Final = Path(__file__).parent / "static"
#: Where each kind of person lands after signing in.
STAFF_HOME: Final = "/cases"
CUSTOMER_HOME: Final = "/portal"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(request: Request, web: AnyPage) -> RedirectResponse:
    """The start page of the signed-in person: the queues, or the customer's portal."""
    return RedirectResponse(CUSTOMER_HOME if web.is_customer else STAFF_HOME, status_code=303)


def install(app: FastAPI, *, sessions: SessionStore | None = None) -> None:
    """Mount the console on ``app`` (``create_app`` calls this).

    Args:
        app: The case API application.
        sessions: The session store (``MemorySessionStore`` when omitted).
    """
    app.state.web_sessions = sessions if sessions is not None else MemorySessionStore()
    app.include_router(router)
    app.include_router(auth_router)
    app.include_router(workspace_router)
    app.include_router(portal_router)
    app.include_router(noc_router)
    install_noc(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(PageHeaders)
