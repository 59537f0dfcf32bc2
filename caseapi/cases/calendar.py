"""Business-hours calendars: SLA deadlines that run only while support is open.

A ``Calendar`` is a time zone, weekly open hours (several local intervals a day
allowed, ``00:00-24:00`` is all day) and holidays (local dates, closed all day).
``add_business_time`` turns a start instant and a duration into a deadline and
``business_time_between`` measures the open time between two instants; both take
and return aware UTC datetimes, so a deadline is still stored as an absolute instant.
A target without a calendar (24x7) is plain addition and never reaches this module.

Business time is real elapsed time while open, not wall-clock time. An instant is
open when the local wall clock at that instant reads a time inside an open interval
of that local date (and the date is no holiday). The instants are found per span of
constant UTC offset (``zoneinfo`` gives the offset; its changes are located to the
second), so a daylight-saving change is handled exactly, deliberately so:

- Spring forward (Europe/Rome, last Sunday of March, 02:00 -> 03:00): the wall clock
  never reads 02:00-02:59, so an interval ``02:00-03:00`` is empty that day,
  ``01:00-04:00`` is open 2 real hours and ``00:00-24:00`` 23.
- Fall back (last Sunday of October, 03:00 -> 02:00): the wall clock reads
  02:00-02:59 twice, so ``02:00-03:00`` is open both times (2 real hours) and
  ``00:00-24:00`` is 25.

Consequently an all-day calendar (every day ``00:00-24:00``, no holidays) gives
exactly the 24x7 deadline, DST or not, and ordinary ``09:00-17:00`` hours are
untouched by a change at 02:00 or 03:00. (Offsets are probed once a day: a zone
changing its offset twice within one day, which no real zone does, would be seen
as not changing.)

The search is bounded: a calendar with no open hours is refused at construction,
and ``add_business_time`` gives up with ``CalendarError`` when the duration does
not fit in ``SEARCH_LIMIT`` (a calendar whose every open day is a holiday).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: Monday first, as ``date.weekday()`` counts.
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: How far ahead ``add_business_time`` looks before giving up.
SEARCH_LIMIT: Final = timedelta(days=3 * 366)
_DAY_MINUTES: Final = 24 * 60
_DAY: Final = timedelta(days=1)
_INTERVAL: Final = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")

#: An open interval of one day in local minutes since midnight, ``(start, end)``.
Interval = tuple[int, int]


class CalendarError(ValueError):
    """A calendar that cannot be built, or a deadline it cannot place."""


@dataclass(frozen=True, slots=True)
class Calendar:
    """When support is open: weekly local hours in a time zone, minus holidays.

    Build one with ``Calendar.build`` (from settings text) or directly; ``hours``
    has seven entries, Monday first, each sorted non-overlapping intervals of local
    minutes ``0 <= start < end <= 1440``.
    """

    name: str
    tz: ZoneInfo
    hours: tuple[tuple[Interval, ...], ...]
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if len(self.hours) != 7:
            raise CalendarError(f"hours: expected 7 weekdays, got {len(self.hours)}")
        for day, intervals in zip(WEEKDAYS, self.hours, strict=True):
            previous_end = -1
            for start, end in intervals:
                if not 0 <= start < end <= _DAY_MINUTES:
                    raise CalendarError(
                        f"hours.{day}: {_show((start, end))} is not a valid interval"
                    )
                if start < previous_end:
                    raise CalendarError(
                        f"hours.{day}: {_show((start, end))} overlaps the interval before it"
                    )
                previous_end = end
        if not any(self.hours):
            raise CalendarError("hours: the calendar has no open hours at all")

    @classmethod
    def build(
        cls,
        name: str,
        *,
        timezone: str,
        hours: Mapping[str, Sequence[str]],
        holidays: Sequence[date] = (),
    ) -> Calendar:
        """A calendar from settings text: ``hours={"mon": ["09:00-17:00"], ...}``.

        A weekday left out is closed. Intervals of a day may be given in any order;
        touching ones (``08:00-12:00``, ``12:00-13:00``) are joined.

        Raises:
            CalendarError: Naming the field: an unknown time zone or weekday, a
                malformed interval, one ending before it starts, overlapping
                intervals, or no open hours at all.
        """
        tz = zone(timezone)
        unknown = sorted(set(hours) - set(WEEKDAYS))
        if unknown:
            raise CalendarError(
                f"hours.{unknown[0]}: unknown weekday, one of {', '.join(WEEKDAYS)}"
            )
        days = []
        for day in WEEKDAYS:
            parsed = sorted(
                parse_interval(text, field=f"hours.{day}") for text in hours.get(day, ())
            )
            joined: list[Interval] = []
            for start, end in parsed:
                if joined and start < joined[-1][1]:
                    raise CalendarError(
                        f"hours.{day}: {_show((start, end))} overlaps {_show(joined[-1])}"
                    )
                if joined and start == joined[-1][1]:
                    joined[-1] = (joined[-1][0], end)
                else:
                    joined.append((start, end))
            days.append(tuple(joined))
        return cls(name=name, tz=tz, hours=tuple(days), holidays=frozenset(holidays))

    def open_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The UTC spans in which the wall clock reads an open time of local ``day``."""
        midnight = datetime.combine(day, time()).replace(tzinfo=self.tz).astimezone(UTC)
        pieces = self._pieces(midnight - _DAY, midnight + 2 * _DAY)
        day_pieces = ((begins, ends) for wall_day, begins, ends in pieces if wall_day == day)
        return list(_merge(day_pieces, touching=True))

    def intervals(self, a: datetime, b: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The open UTC intervals near ``[a, b]``, sorted and disjoint, lazily.

        They cover at least a day either side of ``[a, b]``. Touching ones are not
        joined, so that an all-day calendar does not read years ahead at once.
        """
        return _merge((begins, ends) for _, begins, ends in self._pieces(a - _DAY, b + _DAY))

    def _pieces(self, a: datetime, b: datetime) -> Iterator[tuple[date, datetime, datetime]]:
        """``(wall date, begins, ends)`` of the open time in ``[a, b)``, in order."""
        cursor = a.astimezone(UTC)
        while cursor < b:
            offset = _offset(cursor, self.tz)
            step = min(cursor + _DAY, b)
            if _offset(step, self.tz) != offset:
                step = self._change(cursor, step, offset)
            yield from self._segment(cursor, step, offset)
            cursor = step

    def _change(self, low: datetime, high: datetime, offset: timedelta) -> datetime:
        """The instant after ``low`` (offset ``offset``) where the offset changes."""
        while high - low > timedelta(seconds=1):
            middle = low + (high - low) / 2
            if _offset(middle, self.tz) == offset:
                low = middle
            else:
                high = middle
        # Offsets change on whole seconds; ``high`` is less than a second after it.
        truncated = high.replace(microsecond=0)
        return truncated if truncated > low else high

    def _segment(
        self, a: datetime, b: datetime, offset: timedelta
    ) -> Iterator[tuple[date, datetime, datetime]]:
        """The open pieces of ``[a, b)``, throughout which the UTC offset is ``offset``."""
        wall_a, wall_b = a + offset, b + offset  # UTC datetimes whose fields are wall time
        day = wall_a.date()
        while day <= wall_b.date():
            if day not in self.holidays:
                midnight = datetime.combine(day, time(), tzinfo=UTC)
                for start, end in self.hours[day.weekday()]:
                    begins = max(midnight + timedelta(minutes=start), wall_a) - offset
                    ends = min(midnight + timedelta(minutes=end), wall_b) - offset
                    if begins < ends:
                        yield day, begins, ends
            day += _DAY


def _offset(instant: datetime, tz: ZoneInfo) -> timedelta:
    offset = instant.astimezone(tz).utcoffset()
    assert offset is not None  # a ZoneInfo always has one
    return offset


def _merge(
    pieces: Iterable[tuple[datetime, datetime]], *, touching: bool = False
) -> Iterator[tuple[datetime, datetime]]:
    """Sorted pieces with overlapping ones joined (two wall-clock intervals can
    overlap in UTC at a change), and ``touching`` ones too (an interval split where
    the offset changed is one)."""
    pending: tuple[datetime, datetime] | None = None
    for begins, ends in pieces:
        if pending is not None and (begins < pending[1] or (touching and begins == pending[1])):
            pending = (pending[0], max(pending[1], ends))
            continue
        if pending is not None:
            yield pending
        pending = (begins, ends)
    if pending is not None:
        yield pending


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``.

    Raises:
        CalendarError: ``timezone: unknown time zone ...``.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise CalendarError(
            f"timezone: unknown time zone {name!r} (an IANA name such as 'Europe/Rome')"
        ) from None


def parse_interval(text: str, *, field: str = "hours") -> Interval:
    """``"09:00-17:00"`` as local minutes ``(540, 1020)``; ``24:00`` only as an end.

    Raises:
        CalendarError: A malformed interval or one that ends before it starts.
    """
    match = _INTERVAL.match(text) if isinstance(text, str) else None
    if match is None:
        raise CalendarError(f"{field}: {text!r} is not an interval like '09:00-17:00'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise CalendarError(f"{field}: {text!r} has a time that does not exist (00:00 to 24:00)")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end <= start:
        raise CalendarError(f"{field}: {text!r} ends before it starts")
    return start, end


def add_business_time(calendar: Calendar, start: datetime, duration: timedelta) -> datetime:
    """The instant ``duration`` of open time after ``start`` (aware, returned in UTC).

    Zero returns ``start`` itself; otherwise the result is inside an open interval or
    at its end, and never earlier than ``start + duration``.

    Raises:
        ValueError: ``start`` is naive or ``duration`` negative.
        CalendarError: The duration does not fit within ``SEARCH_LIMIT``.
    """
    start = _utc(start)
    if duration < timedelta(0):
        raise ValueError(f"duration must not be negative, got {duration}")
    if duration == timedelta(0):
        return start
    remaining = duration
    for begins, ends in calendar.intervals(start, start + duration + SEARCH_LIMIT):
        if ends <= start:
            continue
        begins = max(begins, start)
        available = ends - begins
        if remaining <= available:
            return begins + remaining
        remaining -= available
    raise CalendarError(
        f"calendar {calendar.name!r}: {duration} of open time does not fit in the "
        f"{SEARCH_LIMIT.days} days after {start.isoformat()} (holidays on every open day?)"
    )


def business_time_between(calendar: Calendar, a: datetime, b: datetime) -> timedelta:
    """The open time from ``a`` to ``b``; zero when ``b`` is not after ``a``.

    Raises:
        ValueError: ``a`` or ``b`` is naive.
    """
    a, b = _utc(a), _utc(b)
    total = timedelta(0)
    if b <= a:
        return total
    for begins, ends in calendar.intervals(a, b):
        if begins >= b:
            break
        overlap = min(ends, b) - max(begins, a)
        if overlap > timedelta(0):
            total += overlap
    return total


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _show(interval: Interval) -> str:
    (start, end) = interval
    return f"'{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}'"
