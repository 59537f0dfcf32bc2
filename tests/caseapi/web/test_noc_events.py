"""``/events``: the change stream every live region listens to."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

import pytest
from fastapi import FastAPI

from caseapi.auth.principal import Role
from caseapi.cases.incidents import IncidentService
from caseapi.web.noc.changes import ChangeFeed, TooManyStreamsError
from caseapi.web.noc.config import BoardSettings
from tests.caseapi.conftest import Database, incident
from tests.caseapi.lifecycle_fixtures import set_ntu_status
from tests.caseapi.web.pages import anonymous, login_as
from tests.caseapi.web.sse import open_stream, token_of

FAST = BoardSettings.model_validate({"events_poll": "50ms", "events_heartbeat": "200ms"})


@pytest.fixture
def fast(app: FastAPI) -> FastAPI:
    app.state.board_settings = FAST
    return app


async def test_a_new_case_is_announced_and_nothing_else(
    fast: FastAPI, incidents: IncidentService, database: Database
) -> None:
    async with (
        login_as(fast, role=Role.ENGINEER) as engineer,
        open_stream(fast, token_of(engineer)) as stream,
    ):
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["cache-control"] == "no-store"
        assert "content-length" not in stream.headers  # a stream, not an empty answer
        first = await stream.next_chunk(2)
        assert first is not None and first.startswith(b"retry: ")
        # Nothing changed: heartbeats only (several polls and heartbeats long).
        await stream.no_change_within(0.6)
        await incidents.open_incident(incident("ntu-1"))
        assert await stream.next_change(2) == ["cases"]
        await set_ntu_status(database, "ntu-1", "down")
        assert await stream.next_change(2) == ["ntus"]
        await stream.no_change_within(0.3)


async def test_one_watcher_serves_every_stream_and_stops_with_the_last(
    fast: FastAPI, incidents: IncidentService
) -> None:
    async with login_as(fast, role=Role.ENGINEER) as engineer:
        token = token_of(engineer)
        async with open_stream(fast, token) as one, open_stream(fast, token) as two:
            feed: ChangeFeed = fast.state.change_feed
            assert feed.streams == 2
            before = feed.probes
            await asyncio.sleep(0.5)
            # One poll per interval (50 ms) for both streams, not one per stream.
            assert feed.probes - before <= 12
            await incidents.open_incident(incident("ntu-1"))
            assert await one.next_change(2) == ["cases"]
            assert await two.next_change(2) == ["cases"]
        assert feed.streams == 0
        probes = feed.probes
        await asyncio.sleep(0.2)
        assert feed.probes == probes  # nobody listens: no polling


async def test_streams_are_bounded_and_end_at_shutdown(app: FastAPI) -> None:
    app.state.board_settings = FAST.model_copy(update={"events_max_streams": 1})
    async with login_as(app, role=Role.ENGINEER) as engineer:
        token = token_of(engineer)
        async with open_stream(app, token) as first:
            async with app.router.lifespan_context(app):
                async with open_stream(app, token) as refused:
                    assert refused.status == 503
                    assert refused.headers["retry-after"] == "30"
                assert await first.next_chunk(2) is not None
            # The app shut down: the open stream was ended, not left hanging.
            while (chunk := await first.next_chunk(2)) is not None:
                assert chunk.startswith(b":")
            assert first.ended


async def test_only_staff_may_listen(app: FastAPI) -> None:
    async with login_as(app, role=Role.CUSTOMER, customer_id="cust-1") as customer:
        refused = await customer.get("/events")
    assert refused.status_code == 403
    assert "text/html" in refused.headers["content-type"]
    async with anonymous(app) as client:
        response = await client.get("/events")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/events"


async def test_the_feed_rides_out_a_database_error() -> None:
    markers: list[dict[str, Hashable] | Exception] = [
        {"cases": 1, "ntus": 1},
        RuntimeError("database away"),
        {"cases": 2, "ntus": 1},
    ]

    async def probe() -> dict[str, Hashable]:
        value = markers.pop(0) if len(markers) > 1 else markers[0]
        if isinstance(value, Exception):
            raise value
        return value

    feed = ChangeFeed(probe=probe, interval=0.01, max_streams=2)
    with feed.subscribe() as subscription:
        assert await subscription.next(2) == frozenset({"cases"})
        feed.subscribe().close()
        with feed.subscribe(), pytest.raises(TooManyStreamsError):
            feed.subscribe()
    await feed.close()
    with pytest.raises(TooManyStreamsError):
        feed.subscribe()


async def test_boards_refreshed_together_share_one_read_until_the_next_change(
    fast: FastAPI, incidents: IncidentService
) -> None:
    async with (
        login_as(fast, role=Role.ENGINEER) as engineer,
        open_stream(fast, token_of(engineer)) as stream,
    ):
        await stream.next_chunk(2)
        await asyncio.sleep(0.2)  # the watcher has its baseline
        pages = await asyncio.gather(*(engineer.get("/noc/fragment") for _ in range(5)))
        shared = fast.state.shared_board
        assert shared.reads == 1
        assert all('data-test="noc-case"' not in page.text for page in pages)
        ref = await incidents.open_incident(incident("ntu-1"))
        assert await stream.next_change(2) == ["cases"]
        # Read after the change was seen: the new case is there, read once more.
        page = await engineer.get("/noc/fragment")
        assert f'data-ref="{ref}"' in page.text
        assert shared.reads == 2
