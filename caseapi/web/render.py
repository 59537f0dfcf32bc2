"""Rendering pages: one Jinja2 environment, autoescaped, with the reader's clock.

Templates live in ``caseapi/web/templates/`` (``base.html``, ``error.html``, and one
folder an area: ``auth/``, ``workspace/``, ``portal/``, ``noc/``). Every template gets:

- ``web``: the signed-in ``WebSession`` (``None`` on the login and error pages of a
  visitor), so ``web.principal.role``, ``web.display_name``
- ``csrf_field``: the hidden input every state-changing form must include,
  ``{{ csrf_field }}``
- filters ``localtime`` (``2026-03-01 12:50 UTC+01:00`` in the reader's zone),
  ``longtime`` (``1 March 2026, 12:50 (UTC+01:00, Europe/Rome)``) and ``iso`` (the
  UTC instant for ``<time datetime>`` and the countdown script)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context
from jinja2.runtime import Context
from markupsafe import Markup, escape

from caseapi.core.localtime import format_short, format_time
from caseapi.web.session import CSRF_FIELD, WebSession

TEMPLATES: Final = Path(__file__).parent / "templates"

_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=StrictUndefined,  # a misspelt name fails the test, not the reader
    trim_blocks=True,
    lstrip_blocks=True,
    # Templates ship with the code: no stat() of every template on every page.
    auto_reload=False,
)


def _reader(context: Context) -> WebSession | None:
    web = context.get("web")
    return web if isinstance(web, WebSession) else None


@pass_context
def _localtime(context: Context, instant: datetime | None, seconds: bool = False) -> str:
    if instant is None:
        return "-"
    reader = _reader(context)
    return format_short(instant, zone=reader.timezone if reader else None, seconds=seconds)


@pass_context
def _longtime(context: Context, instant: datetime | None) -> str:
    if instant is None:
        return "-"
    reader = _reader(context)
    zone, language = (reader.timezone, reader.language) if reader else (None, "en")
    return format_time(instant, zone=zone, language=language)


def _iso(instant: datetime | None) -> str:
    return "" if instant is None else instant.astimezone(UTC).isoformat()


_environment.filters["localtime"] = _localtime
_environment.filters["longtime"] = _longtime
_environment.filters["iso"] = _iso


def environment() -> Environment:
    """The console's Jinja2 environment (to add a filter an area needs)."""
    return _environment


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render ``template`` for ``request`` as an HTML response.

    The signed-in session (set by the page dependencies) and its CSRF field are added
    to ``context``.
    """
    web = getattr(request.state, "web_session", None)
    values: dict[str, Any] = {
        "request": request,
        "web": web,
        "csrf_field": _csrf_field(web),
        "path": request.url.path,
    }
    values.update(context or {})
    body = _environment.get_template(template).render(values)
    return HTMLResponse(body, status_code=status_code, headers=dict(headers or {}))


def _csrf_field(web: object) -> Markup:
    if not isinstance(web, WebSession):
        return Markup("")
    return Markup('<input type="hidden" name="{}" value="{}">').format(
        CSRF_FIELD, escape(web.csrf_token)
    )
