"""Guards mounted on the whole app (shared route dependencies: ``caseapi.core.deps``)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import APIKeyQuery
from pydantic import BaseModel

from caseapi.cases.errors import CaseValidationError
from caseapi.core.errors import UnknownQueryParameterError


async def check_request(request: Request) -> None:
    """Both guards, as one dependency (FastAPI's cost per dependency is paid by every
    request): ``reject_nul_characters``, then ``reject_unknown_query_parameters``.

    Raises:
        CaseValidationError: As ``reject_nul_characters``.
        UnknownQueryParameterError: As ``reject_unknown_query_parameters``.
    """
    await reject_nul_characters(request)
    await reject_unknown_query_parameters(request)


async def reject_nul_characters(request: Request) -> None:
    """Refuse NUL characters anywhere in the path, query or JSON body (422).

    A ``multipart/form-data`` body (an upload) is left to its route.

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
    headers = request.headers
    if headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers:
        return  # no body (a GET): nothing to read
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type == "multipart/form-data":
        # Files are bytes (NUL included) and must not be read whole here: the upload
        # route streams the body and checks its text fields itself.
        return
    # A console form that FastAPI has parsed already (a route with ``Form`` fields):
    # its stream is consumed and cannot be read again as bytes, so check the parsed
    # form Starlette keeps on the request. Otherwise the body is read (and cached, so
    # a form parsed later reads it from there).
    parsed = getattr(request, "_form", None)
    if parsed is not None:
        for name, value in parsed.multi_items():
            if "\x00" in name or (isinstance(value, str) and "\x00" in value):
                raise CaseValidationError(name, "must not contain NUL characters")
        return
    body = await request.body()
    # JSON writes NUL as the escape \u0000; parse only when one might be there.
    if b"\x00" in body or (b"u0000" in body and _holds_nul(_json(body))):
        raise CaseValidationError("body", "must not contain NUL characters")


async def reject_unknown_query_parameters(request: Request) -> None:
    """Refuse query parameters the matched operation does not declare (422).

    Ignoring them answers ``GET /v1/cases?custmer=x`` with every case, as if it had
    been filtered. The names allowed are those of the route FastAPI matched
    (``scope["route"]``): its own query parameters and those of every dependency under
    it. FastAPI hands over the route as its router declared it, without the
    dependencies added by ``include_router`` or the app, so query parameters must be
    declared on the route or its router (the OpenAPI-driven test fails otherwise).

    Routes left out of the OpenAPI document are not checked: the Prometheus
    ``/metrics`` that ``nms`` mounts (a scrape job's ``params`` must keep working) and
    any HTML page. FastAPI's ``/docs``, ``/redoc`` and ``/openapi.json`` are not API
    routes, so no app dependency runs for them. Mounted on the whole app.

    Raises:
        UnknownQueryParameterError: Names the unknown parameters and the allowed ones.
    """
    if not request.query_params:
        return
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not route.include_in_schema:
        return
    allowed = declared_query_parameters(route.dependant)
    known = set(allowed)
    unknown = [name for name in request.query_params if name not in known]
    if unknown:
        raise UnknownQueryParameterError(unknown=unknown, allowed=allowed)


def declared_query_parameters(dependant: Dependant) -> list[str]:
    """The query parameter names ``dependant`` and its sub-dependencies read, in order."""
    names: dict[str, None] = {}
    pending = [dependant]
    while pending:
        current = pending.pop(0)
        for field in current.query_params:
            model = field.field_info.annotation
            if isinstance(model, type) and issubclass(model, BaseModel):
                # A query parameter model: each of its fields is a parameter.
                names.update(
                    dict.fromkeys(info.alias or name for name, info in model.model_fields.items())
                )
            else:
                names[field.alias] = None
        if isinstance(current.call, APIKeyQuery):
            names[current.call.model.name] = None
        pending[:0] = current.dependencies
    return list(names)


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
