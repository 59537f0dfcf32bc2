"""Human-facing times in the reader's time zone and language (pure).

Every time a person reads (customer mails, the RFO, reports, canned replies, staff
alerts) goes through here, so all of them show the same thing: the wall-clock time
in the reader's zone *with* its UTC offset, and the zone's name, because an offset
alone does not say which rules (DST) apply and a bare local time is ambiguous twice
a year. Machine output (JSON, webhooks, MQTT) stays ISO 8601 in UTC and never comes
here.

Examples::

    format_time(t, zone="Europe/Rome", language="it")
    # 1 marzo 2026, 12:50 (UTC+01:00, Europe/Rome)
    format_time(t, zone="Europe/Rome", language="en")
    # 1 March 2026, 12:50 (UTC+01:00, Europe/Rome)
    format_time(t, zone=None, language="en")
    # 1 March 2026, 11:50 (UTC)
    format_short(t, zone="Europe/Rome")
    # 2026-03-01 12:50 UTC+01:00 (a table cell; the zone's name is in the header)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: The zone of a reader without one.
DEFAULT_ZONE: Final = "UTC"

_MONTHS: Final[dict[str, tuple[str, ...]]] = {
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    "it": (
        "gennaio",
        "febbraio",
        "marzo",
        "aprile",
        "maggio",
        "giugno",
        "luglio",
        "agosto",
        "settembre",
        "ottobre",
        "novembre",
        "dicembre",
    ),
}
_UTC_NAMES: Final = frozenset({"UTC", "Etc/UTC", "Etc/Universal", "Universal", "Zulu", "Z"})


def check_zone(name: str) -> str:
    """``name`` if it is an IANA time zone this system knows.

    Raises:
        ValueError: An unknown zone, naming it.
    """
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name[:80]!r} (an IANA name, e.g. Europe/Rome or UTC)"
        ) from None
    return name


def zone_for(name: str | None) -> tzinfo:
    """The zone called ``name``; UTC for ``None``, an empty or an unknown name.

    Stored zones were checked when they were written (inventory, organisation); a
    zone a later tzdata dropped must not stop a mail, so it reads as UTC.
    """
    if not name or name in _UTC_NAMES:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def first_zone(*names: str | None) -> str:
    """The first set zone of ``names`` (e.g. contact's, then customer's), else UTC."""
    for name in names:
        if name:
            return name
    return DEFAULT_ZONE


def offset_text(offset: timedelta | None, *, zero: str = "UTC") -> str:
    """``UTC+01:00``, ``UTC-03:30``; ``zero`` for a zero offset."""
    if not offset:
        return zero
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{mins:02d}"


def _local(instant: datetime, zone: str | tzinfo | None) -> tuple[datetime, str]:
    if instant.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    tz = zone if isinstance(zone, tzinfo) else zone_for(zone)
    local = instant.astimezone(tz)
    name = getattr(tz, "key", None) or ("UTC" if tz is UTC else str(tz))
    return local, name


def zone_label(instant: datetime, zone: str | tzinfo | None) -> str:
    """``UTC+01:00, Europe/Rome`` (the offset in force at ``instant``); ``UTC`` in UTC."""
    local, name = _local(instant, zone)
    offset = offset_text(local.utcoffset(), zero="UTC+00:00")
    return "UTC" if name in _UTC_NAMES else f"{offset}, {name}"


def format_time(instant: datetime, *, zone: str | tzinfo | None, language: str) -> str:
    """``instant`` as a sentence shows it in ``language``, in ``zone``, with the offset.

    Args:
        instant: An aware time (any zone; naive is refused).
        zone: The reader's IANA zone (``None``: UTC).
        language: ``en`` or ``it``; any other reads as English.

    Raises:
        ValueError: ``instant`` is naive.
    """
    local, _ = _local(instant, zone)
    months = _MONTHS.get(language, _MONTHS["en"])
    return (
        f"{local.day} {months[local.month - 1]} {local.year}, {local:%H:%M} "
        f"({zone_label(instant, zone)})"
    )


def format_short(instant: datetime, *, zone: str | tzinfo | None, seconds: bool = False) -> str:
    """``2026-03-01 12:50 UTC+01:00``: a table cell (the zone's name is in the header).

    ``seconds`` adds them (``12:50:07``), for outages that last seconds.
    """
    local, name = _local(instant, zone)
    # Integer formatting, not strftime: a queue page formats a few hundred of these.
    clock = f"{local.hour:02d}:{local.minute:02d}"
    if seconds:
        clock = f"{clock}:{local.second:02d}"
    offset = "UTC" if name in _UTC_NAMES else offset_text(local.utcoffset(), zero="UTC+00:00")
    return f"{local.year:04d}-{local.month:02d}-{local.day:02d} {clock} {offset}"


def parse_instant(value: object) -> datetime | None:
    """An aware ``datetime`` from a ``datetime`` or ISO 8601 text; ``None`` otherwise."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else None
    return None
