"""Who is on call for a team at an instant: weekly or daily shifts, overrides win.

A rotation hands off at a local wall-clock time in the team's time zone (``mon 09:00``
weekly, ``09:00`` daily), starting on ``start`` with the first person of ``order`` and
going round robin. Handoffs are placed on local dates, so a daylight-saving change
moves no handoff on the wall clock: a weekly shift across the spring change is
167 real hours and one across the autumn change 169. A handoff time the clock skips
(02:30 on the spring-forward night) happens at the first instant after the gap
(``zoneinfo``'s ``fold=0`` reading), and one it reads twice happens the first time.

Before ``start`` the rotation runs backwards with the same period, so that every
instant has exactly one person on call (a team is never uncovered because the file
named a future start). Overrides are local ``[from, to)`` intervals in the team's
zone; while one is active its member is on call. Two overrides of one team that
overlap are refused at construction: which one wins would be a guess.

Pure: every function takes the instant it decides for (an aware datetime).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo

from caseapi.cases.calendar import WEEKDAYS

Kind = Literal["weekly", "daily"]
KINDS: Final[tuple[Kind, ...]] = ("weekly", "daily")
_PERIOD_DAYS: Final[dict[Kind, int]] = {"weekly": 7, "daily": 1}


class RotationError(ValueError):
    """A rotation that cannot be built (the message names the field)."""


@dataclass(frozen=True, slots=True)
class Override:
    """``member`` is on call from ``start`` to ``end`` (local wall clock, team zone)."""

    member: str
    start: datetime  # naive, local
    end: datetime  # naive, local


@dataclass(frozen=True, slots=True)
class Rotation:
    """One team's on-call rotation (see the module docstring)."""

    team: str
    kind: Kind
    tz: ZoneInfo
    handoff: time
    start: date
    order: tuple[str, ...]
    ack_within: timedelta
    overrides: tuple[Override, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise RotationError(f"rotation: {self.kind!r} is not one of weekly, daily")
        if not self.order:
            raise RotationError("order: empty (at least one member)")
        if len(set(self.order)) != len(self.order):
            raise RotationError("order: a member is named twice")
        if self.ack_within <= timedelta(0):
            raise RotationError("ack_within: must be positive")
        spans = sorted(self.overrides, key=lambda o: self.utc(o.start))
        for override in spans:
            if self.utc(override.end) <= self.utc(override.start):
                raise RotationError(
                    f"overrides: {override.member} {override.start:%Y-%m-%dT%H:%M}: "
                    "'to' is not after 'from'"
                )
        for before, after in itertools.pairwise(spans):
            if self.utc(after.start) < self.utc(before.end):
                raise RotationError(
                    f"overrides: {before.member} {before.start:%Y-%m-%dT%H:%M} and "
                    f"{after.member} {after.start:%Y-%m-%dT%H:%M} overlap"
                )

    def utc(self, local: datetime) -> datetime:
        """A naive local wall-clock time of the team as an aware UTC instant."""
        return local.replace(tzinfo=self.tz, fold=0).astimezone(UTC)

    def handoff_at(self, day: date) -> datetime:
        """The handoff instant (UTC) on local date ``day``."""
        return self.utc(datetime.combine(day, self.handoff))

    def shift_index(self, at: datetime) -> int:
        """Which shift ``at`` falls in: 0 is the one starting on ``start`` (negative before)."""
        period = _PERIOD_DAYS[self.kind]
        local_day = at.astimezone(self.tz).date()
        shift = (local_day - self.start).days // period
        if at < self.handoff_at(self.start + timedelta(days=shift * period)):
            shift -= 1
        return shift

    def shift_bounds(self, shift: int) -> tuple[datetime, datetime]:
        """The ``[start, end)`` instants (UTC) of shift number ``shift``."""
        period = _PERIOD_DAYS[self.kind]
        first = self.start + timedelta(days=shift * period)
        return self.handoff_at(first), self.handoff_at(first + timedelta(days=period))

    def scheduled(self, at: datetime) -> str:
        """The member the round robin names at ``at`` (overrides ignored)."""
        return self.order[self.shift_index(at) % len(self.order)]

    def override_at(self, at: datetime) -> Override | None:
        """The override active at ``at``, if any (at most one: they cannot overlap)."""
        for override in self.overrides:
            if self.utc(override.start) <= at < self.utc(override.end):
                return override
        return None

    def on_call(self, at: datetime) -> str:
        """The one member on call at ``at``: an active override's, else the scheduled one."""
        override = self.override_at(at)
        return override.member if override is not None else self.scheduled(at)

    def notify_order(self, at: datetime) -> tuple[str, ...]:
        """Who to alert at ``at``, in order: the person on call, then whoever is next.

        After the on-call person come the scheduled one (when an override is active)
        and then the round robin after the scheduled one; nobody twice.
        """
        scheduled = self.shift_index(at) % len(self.order)
        ring = self.order[scheduled:] + self.order[:scheduled]
        first = self.on_call(at)
        return (first, *(m for m in ring if m != first))


def parse_handoff(kind: Kind, text: str) -> tuple[int | None, time]:
    """``"mon 09:00"`` (weekly) or ``"09:00"`` (daily) as ``(weekday, time)``.

    Raises:
        RotationError: the text does not fit the kind (the message says what does).
    """
    parts = text.split()
    if kind == "weekly":
        if len(parts) != 2 or parts[0].lower() not in WEEKDAYS:
            raise RotationError(f"handoff: {text!r}: expected '<mon..sun> HH:MM' for weekly")
        return WEEKDAYS.index(parts[0].lower()), _clock(parts[1], text)
    if len(parts) != 1:
        raise RotationError(f"handoff: {text!r}: expected 'HH:MM' for daily")
    return None, _clock(parts[0], text)


def _clock(part: str, text: str) -> time:
    hours, sep, minutes = part.partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise RotationError(f"handoff: {text!r}: time is not HH:MM")
    if not (0 <= int(hours) <= 23 and 0 <= int(minutes) <= 59):
        raise RotationError(f"handoff: {text!r}: time out of range")
    return time(int(hours), int(minutes))


def check_order_members(rotation: Rotation, members: Sequence[str]) -> list[str]:
    """Problems of a rotation whose order or overrides name someone not in ``members``."""
    known = set(members)
    problems = [
        f"order: {m}: not a member of team {rotation.team}"
        for m in rotation.order
        if m not in known
    ]
    problems += [
        f"overrides: {o.member}: not a member of team {rotation.team}"
        for o in rotation.overrides
        if o.member not in known
    ]
    return problems
