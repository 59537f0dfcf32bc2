"""The staff alert state machine: send, wait for an acknowledgement, go to the next person.

An alert is raised for one event (a new P1, an SLA breach, ...) with the ordered
list of people to try (the on-call order, or a level's contacts). Step 0 goes to the
first person; when nobody acknowledges within ``ack_within`` the next person is sent
step 1, and so on. An acknowledgement (by anyone it was sent to) stops it. When the
list runs out the alert is ``exhausted``: the engine logs it loudly and, when one is
configured, mails the fallback address (the NOC's shared box).

``step(state, event, now)`` returns the new state and the actions to execute; the
engine stores ``next_at`` as an absolute instant, so a restart loses no timer, and a
tick before ``next_at`` (or after the end) does nothing, so duplicate ticks are harmless.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

Status = Literal["sending", "acked", "exhausted"]


@dataclass(frozen=True, slots=True)
class AlertState:
    """Where one alert is: who to try, how far it got, and when to move on."""

    recipients: tuple[str, ...]
    ack_within: timedelta
    step: int = -1  # the last step sent; -1 before the first
    status: Status = "sending"
    next_at: datetime | None = None
    acked_by: str | None = None


@dataclass(frozen=True, slots=True)
class Raise:
    """The event happened: send step 0."""


@dataclass(frozen=True, slots=True)
class Ack:
    """Someone acknowledged the alert."""

    by: str


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed (the ticker): move on if ``next_at`` is reached."""


Event = Raise | Ack | Tick


@dataclass(frozen=True, slots=True)
class Send:
    """Send step ``step`` of the alert to ``member``."""

    member: str
    step: int


@dataclass(frozen=True, slots=True)
class Exhausted:
    """Nobody acknowledged: log it and tell the fallback, if any."""


Action = Send | Exhausted


def step(state: AlertState, event: Event, now: datetime) -> tuple[AlertState, tuple[Action, ...]]:
    """Apply ``event`` at ``now`` to ``state`` (see the module docstring)."""
    if state.status != "sending":
        return state, ()
    if isinstance(event, Ack):
        return replace(state, status="acked", next_at=None, acked_by=event.by), ()
    if isinstance(event, Raise):
        if state.step >= 0:
            return state, ()  # raised twice: the first one stands
        return _advance(state, now)
    if state.next_at is None or now < state.next_at:
        return state, ()
    return _advance(state, now)


def _advance(state: AlertState, now: datetime) -> tuple[AlertState, tuple[Action, ...]]:
    following = state.step + 1
    if following >= len(state.recipients):
        return replace(state, status="exhausted", next_at=None), (Exhausted(),)
    return (
        replace(state, step=following, next_at=now + state.ack_within),
        (Send(state.recipients[following], following),),
    )
