"""The OpenAPI document: every status an operation can answer, with its problem body.

One post-processing step (``install``) documents the error responses of every
operation, so a new route is covered without copying ``responses=`` around:

- every operation: 422 (``validation_error``, ``unknown_query_parameter``) and 503
  (``database_unavailable``, with ``Retry-After``);
- an operation with a security requirement: 401 (``unauthenticated``);
- an operation with path parameters: 404 (the resource's ``*_not_found``);
- an operation with a request body: 400 (``bad_request``: not UTF-8, so not JSON)
  and 413 (``request_entity_too_large``);
- an operation with an ``If-Match`` header: 412 (``precondition_failed``);
- whatever its dependencies raise: a dependency (``require_roles``, a rate limit)
  names its errors with ``@raises(...)``; the document lists them on every operation
  it guards (declared on the route, its router, ``include_router`` or the app);
- whatever the route itself raises: ``responses=errors(SomeError, ...)`` on the route;
- whatever a middleware answers for every operation: ``declare_everywhere(app, ...)``.

Each error class gives its status (``http_status``; 404 for ``NotFoundError``) and
its ``code``; all share the ``Problem`` schema (RFC 9457 plus ``code``), and each
response lists its codes in ``x-problem-codes`` (and in its description).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final, TypeVar

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from caseapi.core.errors import InvalidCursorError, NotFoundError

PROBLEM_JSON: Final = "application/problem+json"
_PROBLEM_REF: Final = {"$ref": "#/components/schemas/Problem"}
_NAMES: Final = {"type": "array", "items": {"type": "string"}}
#: RFC 9457 members, our ``code``, and the extension members some codes add.
PROBLEM_SCHEMA: Final[dict[str, Any]] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; `code` is the machine-readable reason.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "code": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "`validation_error`: one entry per bad field, naming it.",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
        "unknown": {
            "description": (
                "`unknown_query_parameter`: the parameter names; "
                "`unknown_scope_ids`: per scope kind, the ids no one knows"
            ),
            "anyOf": [_NAMES, {"type": "object", "additionalProperties": _NAMES}],
        },
        "allowed": _NAMES,
    },
}
#: What every operation may answer, whatever it does.
_ALWAYS: Final[dict[int, tuple[str, ...]]] = {
    422: ("validation_error", "unknown_query_parameter"),
    503: ("database_unavailable",),
}
_HEADERS: Final[dict[int, dict[str, Any]]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer`"}},
    429: {"Retry-After": {"schema": {"type": "string"}, "description": "seconds"}},
    503: {"Retry-After": {"schema": {"type": "string"}, "description": "seconds"}},
}
#: A 404's code when the route names none: ``case_not_found``, ``webhook_not_found``...
_ANY_NOT_FOUND: Final = "*_not_found"
#: The response member that lists a problem's codes, machine-readable.
CODES: Final = "x-problem-codes"
#: Codes of the statuses the document infers from an operation's shape.
_INFERRED: Final[dict[int, tuple[str, ...]]] = {
    400: ("bad_request",),
    401: ("unauthenticated",),
    404: (_ANY_NOT_FOUND,),
    412: ("precondition_failed",),
    413: ("request_entity_too_large",),
}

Errors = Iterable[type[Exception] | tuple[int, str]]
F = TypeVar("F", bound=Callable[..., Any])


def status_of(error: type[Exception]) -> int:
    """The HTTP status the app answers ``error`` with."""
    if issubclass(error, NotFoundError):
        return 404
    if issubclass(error, InvalidCursorError):
        return 422
    status = getattr(error, "http_status", None)
    if not isinstance(status, int):
        raise TypeError(f"{error.__name__} has no HTTP status")
    return status


def _codes(raised: Errors) -> dict[int, list[str]]:
    codes: dict[int, list[str]] = {}
    for error in raised:
        if isinstance(error, tuple):
            status, code = error
        else:
            status, code = status_of(error), str(getattr(error, "code", "error"))
        listed = codes.setdefault(status, [])
        if code not in listed:
            listed.append(code)
    return codes


def problem_response(status: int, codes: Iterable[str]) -> dict[str, Any]:
    """An OpenAPI response object: a problem with one of ``codes``."""
    listed = list(codes)
    names = ", ".join(f"`{code}`" for code in listed)
    response: dict[str, Any] = {
        "description": f"Problem (RFC 9457): {names}",
        "content": {PROBLEM_JSON: {"schema": dict(_PROBLEM_REF)}},
        CODES: listed,
    }
    if status in _HEADERS:
        response["headers"] = _HEADERS[status]
    return response


def errors(*raised: type[Exception] | tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that raises ``raised`` (error classes or (status, code))."""
    return {status: problem_response(status, codes) for status, codes in _codes(raised).items()}


def raises(*raised: type[Exception] | tuple[int, str]) -> Callable[[F], F]:
    """Mark a dependency with the errors it raises: every route it guards documents them."""

    def mark(dependency: F) -> F:
        dependency.__dict__.setdefault("problem_errors", []).extend(raised)
        return dependency

    return mark


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` document the problems of every operation (see module doc)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
            )
            document_problems(app, schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document_problems(app: FastAPI, schema: dict[str, Any]) -> None:
    """Add the problem responses of every operation of ``app`` to ``schema``."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    # FastAPI's own validation error shapes describe a body we never send.
    for name in ("HTTPValidationError", "ValidationError"):
        schema["components"]["schemas"].pop(name, None)
    everywhere: Errors = getattr(app.state, "problems_everywhere", ())
    for path, methods, dependant in _api_routes(app):
        item = schema["paths"].get(path, {})
        for method in methods:
            operation = item.get(method.lower())
            if operation is not None:
                _document(operation, [*everywhere, *_dependency_errors(dependant)])


def declare_everywhere(app: FastAPI, *raised: type[Exception] | tuple[int, str]) -> None:
    """Document ``raised`` on every operation: for errors a middleware answers with."""
    app.state.problems_everywhere = [*getattr(app.state, "problems_everywhere", ()), *raised]
    app.openapi_schema = None


def _api_routes(app: FastAPI) -> Iterator[tuple[str, set[str], Dependant]]:
    """(path, methods, dependant) of every documented route, included routers' too.

    The dependant holds every dependency that runs: the route's, its routers' and
    the app's.
    """
    contexts = getattr(routing, "iter_route_contexts", None)
    if contexts is None:  # FastAPI before lazily included routers: a flat list
        for route in app.routes:
            if isinstance(route, APIRoute) and route.include_in_schema:
                yield route.path_format, set(route.methods or ()), route.dependant
        return
    for context in contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and context.include_in_schema:
            dependant = getattr(context, "dependant", None) or route.dependant
            yield context.path_format, set(context.methods or ()), dependant


def _dependency_errors(dependant: Dependant) -> list[type[Exception] | tuple[int, str]]:
    found: list[type[Exception] | tuple[int, str]] = []
    pending = [dependant]
    while pending:
        current = pending.pop()
        found.extend(getattr(current.call, "problem_errors", ()))
        pending.extend(current.dependencies)
    return found


def _document(operation: dict[str, Any], raised: Errors) -> None:
    codes: dict[int, list[str]] = {status: list(names) for status, names in _ALWAYS.items()}
    parameters = operation.get("parameters", [])
    inferred = {
        401: bool(operation.get("security")),
        404: any(p["in"] == "path" for p in parameters),
        412: any(p["in"] == "header" and p["name"].lower() == "if-match" for p in parameters),
        # A body that is not UTF-8 cannot even be parsed as JSON.
        400: "requestBody" in operation,
        413: "requestBody" in operation,
    }
    for status, applies in inferred.items():
        if applies:
            codes.setdefault(status, []).extend(_INFERRED[status])
    for status, names in _codes(raised).items():
        codes.setdefault(status, []).extend(names)
    responses = operation.setdefault("responses", {})
    for status, names in sorted(codes.items()):
        # Codes the route declared with ``errors(...)`` come first; the rest follow.
        merged = list(responses.get(str(status), {}).get(CODES, []))
        merged += [code for code in names if code not in merged]
        if len(merged) > 1 and _ANY_NOT_FOUND in merged:
            merged.remove(_ANY_NOT_FOUND)  # the route named its own
        responses[str(status)] = problem_response(status, merged)
    operation["responses"] = dict(sorted(responses.items()))


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the document lists for ``path`` (HEAD with GET); [] if none does.

    A 405's ``Allow`` comes from here: Starlette's names only the methods of the
    first route that matched the path, and a path is often served by several.
    """
    methods: set[str] = set()
    for template, item in app.openapi()["paths"].items():
        if _template_pattern(template).fullmatch(path):
            methods.update(method.upper() for method in item if method in _METHODS)
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


_METHODS: Final = frozenset({"get", "put", "post", "patch", "delete", "head", "options", "trace"})


@functools.cache
def _template_pattern(template: str) -> re.Pattern[str]:
    # ``/v1/cases/{ref}/rfo`` -> ``/v1/cases/[^/]+/rfo``, as Starlette matches it.
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile(
        "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
    )
