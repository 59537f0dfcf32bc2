"""Report periods: a calendar month in a time zone, or any range (pure).

A month runs from local midnight on its first day to local midnight on the next
month's first day, in the customer's time zone (UTC when it has none): a month with
a daylight-saving change has 743 or 745 hours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: The longest range a report takes: bounded work per request.
MAX_PERIOD: Final = timedelta(days=400)
_MONTH = re.compile(r"(\d{4})-(\d{2})")


class PeriodError(ValueError):
    """A period parameter that cannot be used; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Period:
    """``[start, end)`` in UTC, with the zone its boundaries were taken in."""

    start: datetime
    end: datetime
    timezone: str
    label: str

    @property
    def seconds(self) -> float:
        """The length of the period."""
        return (self.end - self.start).total_seconds()


def zone(name: str | None) -> ZoneInfo:
    """The zone named ``name`` (UTC for ``None``).

    Raises:
        PeriodError: No such zone.
    """
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise PeriodError("timezone", f"unknown time zone {name!r}") from None


def parse_month(text: str) -> tuple[int, int]:
    """``"2026-11"`` -> ``(2026, 11)``.

    Raises:
        PeriodError: Not ``YYYY-MM`` with a month 01..12 (field ``month``).
    """
    match = _MONTH.fullmatch(text)
    if match is None:
        raise PeriodError("month", f"expected YYYY-MM, got {text!r}")
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12 or year < 1970:
        raise PeriodError("month", f"no such month: {text!r}")
    return year, month


def month_period(year: int, month: int, tz: str | None) -> Period:
    """The calendar month ``year-month`` in time zone ``tz`` (UTC for ``None``)."""
    where = zone(tz)
    first = datetime(year, month, 1, tzinfo=where)
    following = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=where)
    return Period(
        start=first.astimezone(UTC),
        end=following.astimezone(UTC),
        timezone=where.key,
        label=f"{year:04d}-{month:02d}",
    )


def current_month(now: datetime, tz: str | None) -> Period:
    """The calendar month ``now`` falls in, in time zone ``tz``."""
    local = now.astimezone(zone(tz))
    return month_period(local.year, local.month, tz)


def range_period(start: datetime, end: datetime, tz: str | None) -> Period:
    """``[start, end)`` as given (aware timestamps).

    Raises:
        PeriodError: Naive timestamps, ``end`` not after ``start``, or longer than
            ``MAX_PERIOD``.
    """
    for name, value in (("start", start), ("end", end)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise PeriodError(name, f"{name} needs a UTC offset (e.g. 2026-11-01T00:00:00Z)")
    if end <= start:
        raise PeriodError("end", "end must be after start")
    if end - start > MAX_PERIOD:
        raise PeriodError("end", f"a report covers at most {MAX_PERIOD.days} days")
    where = zone(tz)
    return Period(
        start=start.astimezone(UTC),
        end=end.astimezone(UTC),
        timezone=where.key,
        label=f"{start.isoformat()}/{end.isoformat()}",
    )
