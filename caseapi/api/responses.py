"""A JSON response from a Pydantic model, encoded once.

``JSONResponse(model.model_dump(mode="json"))`` builds a dict of the model and then
encodes the dict with the standard library's ``json``: two passes in Python over
every field. ``model_response`` has Pydantic (in Rust) write the JSON bytes directly;
the body is the same JSON (compact, UTF-8, ``JSONResponse``'s own settings).
Routes whose OpenAPI document names the model through ``responses=`` keep it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel


class EncodedJSONResponse(JSONResponse):
    """A ``JSONResponse`` whose content is already encoded JSON (bytes)."""

    def render(self, content: Any) -> bytes:
        if not isinstance(content, bytes):
            raise TypeError("EncodedJSONResponse takes encoded JSON bytes")
        return content


def model_response(
    model: BaseModel, *, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """Answer with ``model`` as JSON, encoded by Pydantic in one pass."""
    return EncodedJSONResponse(
        model.model_dump_json().encode(), status_code=status_code, headers=headers
    )
