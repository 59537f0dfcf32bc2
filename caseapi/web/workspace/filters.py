"""Template filters of the workspace (registered on the console's environment)."""

from __future__ import annotations

from datetime import datetime

from caseapi.web.render import environment


def countdown(at: datetime | None, now: datetime) -> str:
    """``in 12 min`` / ``overdue 3 h 5 min``: what a deadline's countdown shows first
    (``static/workspace.js`` keeps it running)."""
    if at is None:
        return "-"
    seconds = int((at - now).total_seconds())
    text = _span(abs(seconds))
    return f"overdue {text}" if seconds <= 0 else f"in {text}"


def _span(seconds: int) -> str:
    minutes = seconds // 60
    if minutes < 1:
        return f"{seconds} s"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def age(since: datetime | None, now: datetime) -> str:
    """How long ago ``since`` was (``3 h 5 min``)."""
    return "-" if since is None else _span(max(0, int((now - since).total_seconds())))


def overdue(at: datetime | None, now: datetime) -> bool:
    return at is not None and at <= now


environment().filters["countdown"] = countdown
environment().filters["age"] = age
environment().tests["overdue_at"] = overdue
