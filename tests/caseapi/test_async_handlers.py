"""Every route and dependency of the app is a coroutine.

FastAPI runs a plain function (an endpoint or a dependency, however trivial) in a
worker thread on every request: a thread hop and a wait for the pool each time,
which a page with a dozen dependencies pays a dozen times. Nothing in a request
blocks (the database is asynchronous), so nothing needs the pool.
"""

from __future__ import annotations

import inspect

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute


def _callables(dependant: Dependant) -> list[object]:
    found: list[object] = [] if dependant.call is None else [dependant.call]
    for sub in dependant.dependencies:
        found.extend(_callables(sub))
    return found


def _runs_in_a_thread(call: object) -> bool:
    if inspect.isclass(call):
        return False  # a model class (a body, a query): built in place
    # A callable object runs its __call__.
    function = call if inspect.isfunction(call) else type(call).__call__
    return not (inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function))


def _routes(app: FastAPI) -> list[tuple[str, Dependant]]:
    # Included routers are resolved lazily (with their own dependencies added):
    # their effective routes are what a request runs.
    contexts = getattr(routing, "iter_route_contexts", None)
    if contexts is None:  # FastAPI before lazily included routers: a flat list
        return [(r.path, r.dependant) for r in app.routes if isinstance(r, APIRoute)]
    return [
        (context.path_format, context.dependant)
        for context in contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
    ]


async def test_no_route_or_dependency_needs_a_worker_thread(app: FastAPI) -> None:
    routes = _routes(app)
    assert len(routes) > 100  # the API's and the console's
    threaded = sorted(
        {
            f"{path}: {getattr(call, '__qualname__', call)}"
            for path, dependant in routes
            for call in _callables(dependant)
            if _runs_in_a_thread(call)
        }
    )
    assert threaded == []
