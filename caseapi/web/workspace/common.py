"""What the workspace's pages share: the app's services, form reading, local times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from pydantic import ValidationError

from caseapi.core.errors import CaseApiError, NotFoundError
from caseapi.web.errors import status_of
from caseapi.web.services import cases, comments, maintenance, replies, rfos

__all__ = ["cases", "comments", "maintenance", "replies", "rfos"]  # the areas' accessors


async def form_of(request: Request) -> dict[str, str]:
    """The posted form's text fields (the CSRF token left out); repeated names keep
    the last value."""
    form = await request.form()
    return {
        name: value
        for name, value in form.items()
        if isinstance(value, str) and name != "csrf_token"
    }


def local_to_utc(value: str, zone: str) -> datetime:
    """A ``datetime-local`` value (``2026-03-01T14:30``) read in the reader's ``zone``.

    Raises:
        ValueError: Not a date and time of that form.
    """
    try:
        naive = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a date and time (YYYY-MM-DDTHH:MM)") from None
    if naive.tzinfo is not None:
        return naive.astimezone(UTC)
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    return naive.replace(tzinfo=tz).astimezone(UTC)


def utc_to_local_input(value: datetime | None, zone: str) -> str:
    """``value`` as a ``datetime-local`` input shows it in the reader's ``zone``."""
    if value is None:
        return ""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    return value.astimezone(tz).strftime("%Y-%m-%dT%H:%M")


def validation_message(exc: ValidationError) -> str:
    """A Pydantic refusal in the words a form shows: ``field: what is wrong``."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()))
        parts.append(f"{where or 'form'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "the form is not valid"


def refusal(exc: Exception) -> tuple[int, str]:
    """The status and message a form shows for a refusal ``exc``."""
    if isinstance(exc, ValidationError):
        return 422, validation_message(exc)
    if isinstance(exc, ValueError):
        return 422, str(exc)
    status = status_of(exc)
    return status, str(exc) if isinstance(exc, CaseApiError) and str(exc) else "refused"


#: What a form catches to show next to its fields (everything else is the error page).
FORM_ERRORS: tuple[type[Exception], ...] = (ValidationError, ValueError, CaseApiError)


def is_form_error(exc: Exception) -> bool:
    """Whether a form shows ``exc`` itself (a 404 is the error page)."""
    return isinstance(exc, FORM_ERRORS) and not isinstance(exc, NotFoundError)


def drop_empty(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without blank fields (a form sends "" for what was left empty)."""
    return {k: v for k, v in values.items() if not (isinstance(v, str) and v.strip() == "")}
