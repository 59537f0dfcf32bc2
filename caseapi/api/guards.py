"""Guards mounted on the whole app (shared route dependencies: ``caseapi.core.deps``)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from caseapi.cases.errors import CaseValidationError


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
