"""``caseapi.core.localtime``: a human-facing time in the reader's zone, with its offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from caseapi.core.localtime import (
    check_zone,
    first_zone,
    format_short,
    format_time,
    offset_text,
    parse_instant,
    zone_for,
    zone_label,
)

WINTER = datetime(2026, 3, 1, 11, 50, tzinfo=UTC)
SUMMER = datetime(2026, 7, 14, 22, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("instant", "zone", "language", "shown"),
    [
        (WINTER, "Europe/Rome", "it", "1 marzo 2026, 12:50 (UTC+01:00, Europe/Rome)"),
        (WINTER, "Europe/Rome", "en", "1 March 2026, 12:50 (UTC+01:00, Europe/Rome)"),
        (SUMMER, "Europe/Rome", "it", "15 luglio 2026, 00:05 (UTC+02:00, Europe/Rome)"),
        (SUMMER, "America/New_York", "en", "14 July 2026, 18:05 (UTC-04:00, America/New_York)"),
        (WINTER, "Asia/Kolkata", "en", "1 March 2026, 17:20 (UTC+05:30, Asia/Kolkata)"),
        (WINTER, None, "en", "1 March 2026, 11:50 (UTC)"),
        (WINTER, "UTC", "it", "1 marzo 2026, 11:50 (UTC)"),
        # A language without month names reads as English.
        (WINTER, "Europe/London", "de", "1 March 2026, 11:50 (UTC+00:00, Europe/London)"),
    ],
)
def test_format_time_in_zone_and_language(
    instant: datetime, zone: str | None, language: str, shown: str
) -> None:
    assert format_time(instant, zone=zone, language=language) == shown


def test_the_same_instant_from_any_offset_reads_the_same() -> None:
    other = WINTER.astimezone(timezone(timedelta(hours=-7)))
    assert format_time(other, zone="Europe/Rome", language="en") == format_time(
        WINTER, zone="Europe/Rome", language="en"
    )


def test_dst_changes_the_offset_across_the_night_of_the_switch() -> None:
    # Europe/Rome springs forward on 2026-03-29 at 02:00 local (01:00 UTC).
    before = datetime(2026, 3, 29, 0, 59, tzinfo=UTC)
    after = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert format_short(before, zone="Europe/Rome") == "2026-03-29 01:59 UTC+01:00"
    assert format_short(after, zone="Europe/Rome") == "2026-03-29 03:00 UTC+02:00"
    # Falling back: 02:30 local happens twice; the offset tells which.
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    second = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert format_time(first, zone="Europe/Rome", language="it") == (
        "25 ottobre 2026, 02:30 (UTC+02:00, Europe/Rome)"
    )
    assert format_time(second, zone="Europe/Rome", language="it") == (
        "25 ottobre 2026, 02:30 (UTC+01:00, Europe/Rome)"
    )


def test_short_form_for_tables() -> None:
    assert format_short(WINTER, zone=None) == "2026-03-01 11:50 UTC"
    assert format_short(WINTER, zone="Europe/London") == "2026-03-01 11:50 UTC+00:00"
    assert format_short(SUMMER, zone="Europe/London", seconds=True) == (
        "2026-07-14 23:05:00 UTC+01:00"
    )


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_time(datetime(2026, 3, 1, 12, 0), zone="Europe/Rome", language="en")


def test_zones() -> None:
    assert check_zone("Europe/Rome") == "Europe/Rome"
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        check_zone("Mars/Olympus")
    # Stored zones a later tzdata dropped read as UTC rather than stopping a mail.
    assert zone_for("Mars/Olympus") is UTC
    assert zone_for(None) is UTC
    assert first_zone(None, "", "Europe/Rome", "Asia/Tokyo") == "Europe/Rome"
    assert first_zone(None, None) == "UTC"
    assert zone_label(SUMMER, "Europe/Rome") == "UTC+02:00, Europe/Rome"
    assert offset_text(timedelta(hours=-3, minutes=-30)) == "UTC-03:30"
    assert offset_text(timedelta(0)) == "UTC"


def test_parse_instant() -> None:
    assert parse_instant("2026-03-01T11:50:00+00:00") == WINTER
    assert parse_instant(WINTER) == WINTER
    assert parse_instant("2026-03-01T11:50:00") is None  # naive: not an instant
    assert parse_instant("soon") is None
    assert parse_instant(5) is None
