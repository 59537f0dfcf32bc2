"""The NOC board (``/noc``, its live fragment) and the change stream (``/events``).

``/events`` is what every live region of the console listens to (``static/live.js``):
a staff member's browser holds one stream per tab, and the process's one change
watcher (``caseapi.web.noc.changes``) feeds them all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from caseapi.web.deps import StaffPage
from caseapi.web.noc.board import BoardService, SharedBoard
from caseapi.web.noc.changes import ChangeFeed
from caseapi.web.noc.config import BoardSettings
from caseapi.web.noc.shards import ProbeShards
from caseapi.web.noc.stream import EventStream
from caseapi.web.render import render

router = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    """Give ``app`` the board's defaults and close the change feed at shutdown.

    ``caseapi.app.configure_board`` replaces the settings and adds the probe shards.
    """
    app.state.board_settings = BoardSettings()
    app.state.probe_shards = None
    app.state.change_feed = None
    app.state.shared_board = None
    previous = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # ``create_app`` gives the app no lifespan state of its own to pass on.
        async with previous(app):
            try:
                yield
            finally:
                await close_feed(app)

    app.router.lifespan_context = lifespan


async def close_feed(app: FastAPI) -> None:
    """End every stream and stop the watcher (the app is shutting down; a server
    run without lifespan, as ``nms`` runs it, calls ``caseapi.app.close_console``)."""
    feed: ChangeFeed | None = app.state.change_feed
    if feed is not None:
        await feed.close()


def shared_board(app: FastAPI) -> SharedBoard:
    """The app's shared board reads (made on first use, with the settings then)."""
    shared: SharedBoard | None = app.state.shared_board
    if shared is None:
        settings: BoardSettings = app.state.board_settings
        clock = app.state.case_service.clock
        service = BoardService(
            sessionmaker=app.state.sessionmaker, cases=app.state.case_service, settings=settings
        )
        shared = SharedBoard(service=service, clock=clock, ttl=settings.events_poll.total_seconds())
        app.state.shared_board = shared
    return shared


def change_feed(app: FastAPI) -> ChangeFeed:
    """The app's one change feed, made on the first stream (with the settings then)."""
    feed: ChangeFeed | None = app.state.change_feed
    if feed is None:
        settings: BoardSettings = app.state.board_settings
        service = BoardService(
            sessionmaker=app.state.sessionmaker, cases=app.state.case_service, settings=settings
        )
        feed = ChangeFeed(
            probe=service.fingerprint,
            interval=settings.events_poll.total_seconds(),
            max_streams=settings.events_max_streams,
        )
        app.state.change_feed = feed
    return feed


async def _board_context(request: Request) -> dict[str, object]:
    shards: ProbeShards | None = request.app.state.probe_shards
    feed: ChangeFeed | None = request.app.state.change_feed
    generation = feed.generation if feed is not None and feed.watching else None
    board = await shared_board(request.app).board(shards=shards, generation=generation)
    return {"board": board}


@router.get("/noc")
async def noc_board(request: Request, web: StaffPage) -> HTMLResponse:
    """The NOC board: fleet, incidents, SLA watch, probe shards; updates by itself."""
    return render(request, "noc/board.html", await _board_context(request))


@router.get("/noc/fragment")
async def noc_fragment(request: Request, web: StaffPage) -> HTMLResponse:
    """The board's live region alone (what ``live.js`` swaps in on a change)."""
    return render(request, "noc/_board.html", await _board_context(request))


@router.get("/events")
async def events(request: Request, web: StaffPage) -> Response:
    """Server-Sent Events: ``change`` with the topics (``cases``, ``ntus``) that changed."""
    feed = change_feed(request.app)
    settings: BoardSettings = request.app.state.board_settings
    subscription = feed.subscribe()  # TooManyStreamsError: the 503 page
    return EventStream(subscription, heartbeat=settings.events_heartbeat.total_seconds())
