"""The escalation matrix: per contract tier, who each level is and when it is told.

A tier (the customer attribute ``tier``, default ``standard``) maps the levels L1, L2
and L3 to a team, named contacts and management contacts, and says after how long
since the case opened each level above L1 is notified (``notify_after``). A missed
commitment (SLA breach) escalates at once to the next level, whatever the schedule.
What the customer is shown is the level, and the next contact's name only when the
contract says ``customer_sees: level_and_contact``.

Pure: no database, no clock of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal

Level = Literal["L1", "L2", "L3"]
LEVELS: Final[tuple[Level, ...]] = ("L1", "L2", "L3")
CustomerSees = Literal["level", "level_and_contact"]
CUSTOMER_SEES: Final[tuple[CustomerSees, ...]] = ("level", "level_and_contact")
DEFAULT_TIER: Final = "standard"


class MatrixError(ValueError):
    """A tier that cannot be built (the message names the field)."""


@dataclass(frozen=True, slots=True)
class LevelContacts:
    """Who a level is: a team (its on-call person) plus named contacts and managers."""

    team: str
    contacts: tuple[str, ...] = ()
    management: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Tier:
    """One contract tier's escalation matrix."""

    name: str
    levels: Mapping[Level, LevelContacts]
    notify_after: Mapping[Level, timedelta] = field(default_factory=dict)
    customer_sees: CustomerSees = "level"

    def __post_init__(self) -> None:
        if "L1" not in self.levels:
            raise MatrixError("levels: L1 missing (the first level every case starts at)")
        for level, after in self.notify_after.items():
            if level not in self.levels:
                raise MatrixError(f"notify_after: {level}: no such level in 'levels'")
            if level == "L1":
                raise MatrixError("notify_after: L1: the first level is told at opening")
            if after <= timedelta(0):
                raise MatrixError(f"notify_after: {level}: must be positive")
        ordered = [self.notify_after[lv] for lv in LEVELS if lv in self.notify_after]
        if ordered != sorted(ordered):
            raise MatrixError("notify_after: a higher level is due before a lower one")
        if self.customer_sees not in CUSTOMER_SEES:
            raise MatrixError(
                f"customer_sees: {self.customer_sees!r} is not one of level, level_and_contact"
            )

    def next_level(self, level: Level) -> Level | None:
        """The level above ``level`` in this tier, or None at the top."""
        above = [lv for lv in LEVELS[LEVELS.index(level) + 1 :] if lv in self.levels]
        return above[0] if above else None

    def level_due(self, opened_at: datetime, now: datetime) -> Level:
        """The highest level the schedule has reached ``now`` for a case opened then."""
        reached: Level = "L1"
        for level in LEVELS:
            after = self.notify_after.get(level)
            if after is not None and now >= opened_at + after:
                reached = level
        return reached

    def next_escalation(self, opened_at: datetime, current: Level) -> tuple[Level, datetime] | None:
        """The next scheduled escalation above ``current``: its level and instant."""
        for level in LEVELS[LEVELS.index(current) + 1 :]:
            after = self.notify_after.get(level)
            if after is not None:
                return level, opened_at + after
        return None

    def recipients(self, level: Level) -> tuple[str, ...]:
        """The named members a level's escalation alerts (contacts, then management).

        Empty when the level names nobody: its team's on-call person is alerted then.
        """
        spec = self.levels.get(level)
        if spec is None:
            return ()
        seen: dict[str, None] = dict.fromkeys((*spec.contacts, *spec.management))
        return tuple(seen)

    def customer_view(self, level: Level, next_contact_name: str | None) -> dict[str, str]:
        """What the customer sees of the escalation: the level, the contact if allowed."""
        view: dict[str, str] = {"level": level}
        if self.customer_sees == "level_and_contact" and next_contact_name:
            view["contact"] = next_contact_name
        return view


def tier_for(tiers: Mapping[str, Tier], name: str | None) -> Tier | None:
    """The tier named ``name`` (a customer's ``tier`` attribute), else ``standard``."""
    return tiers.get(name or DEFAULT_TIER) or tiers.get(DEFAULT_TIER)
