"""The per-NTU availability state machine: pure, no I/O, time passed in.

How it works. Each probe cycle gives one ``Observed`` event per NTU: ``ok`` is true
when the NTU showed any sign of life (one echo answered is enough). A failure moves
an ``up`` NTU to ``suspect`` and remembers the time of that first failed probe as
the outage start. When failures have lasted ``down_after`` (measured between probe
times, so a restart of the process does not reset or stretch it) the NTU is
``down`` and one ``OpenCase`` action is emitted. Any success before that resets the
clock. A down NTU needs ``restore_after`` consecutive good cycles to be ``up``
again (hysteresis); the impact ends at the first of them, which is the
``restored_at`` of the ``RestoreCase`` action. A failure in between sends it back
to ``down`` without a second case.

Maintenance. An observation may carry ``mute_until``, the end of a maintenance
window covering the NTU: failures before that time do not count towards
``down_after``: the clock restarts at each muted failure, so a failure that persists
past the end of the window (whenever it really ended) opens its case ``down_after``
after the last muted probe, and the case's outage starts there.

Missing data is not an outage. When no observation arrived for ``stale_after``
(checked by ``Tick`` events and again when the next observation arrives) the NTU is
``unknown``: a suspected outage is forgotten, an open case stays open (unknown
never resolves or opens anything).

Observations older than the last one seen are ignored, so a late or replayed
result cannot rewind the state.

Topology (upstream nodes). Each observation carries ``upstream``, the verdict on the
NTU's ancestors (worst one wins; ``nms.detector.topology.upstream_verdict`` computes it):

* ``clear``: every ancestor is up (or was never observed) - the machine as above.
  ``upstream_since`` is when the last ancestor outage ended (its restoration).
* ``pending``: some ancestor is ``suspect``, or ``unknown`` with its last
  observation a failure. Its verdict is not known yet, so a failure here counts
  towards ``down_after`` but never opens a case: the NTU waits in ``suspect``
  (the ordering rule: a child never opens its own P1 before its ancestors'
  verdict is known; when the ancestor turns out up, the next failure may open at
  once, as the child's own clock never stopped).
* ``down``: some ancestor has a confirmed outage (``down``, ``recovering``, or
  ``unknown`` with its case open). A failure makes the NTU ``unreachable``: no case
  of its own (the ancestor's upstream incident covers it), its own clock is
  dropped. When the ancestor is restored, a failure that goes on starts a new
  clock at ``upstream_since`` (the ancestor's restoration): the NTU opens its own
  case ``down_after`` after that, if it is still down.

An NTU whose own case is already open stays ``down`` whatever happens upstream
(suppress creation, never monitoring or resolution).

    status       Observed(ok)              Observed(fail)                     Tick (stale)
    unknown      up | recovering | up+R    suspect | down+O | unreachable     -
    up           up                        suspect | unreachable              unknown
    suspect      up                        suspect | down+O | unreachable     unknown
    down         recovering | up+R         down                               unknown
    recovering   recovering | up+R         down                               unknown
    unreachable  up                        unreachable | suspect | down+O     unknown

    O = OpenCase (only when upstream is clear), R = RestoreCase
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum


class Status(StrEnum):
    UNKNOWN = "unknown"
    UP = "up"
    SUSPECT = "suspect"
    DOWN = "down"
    RECOVERING = "recovering"
    UNREACHABLE = "unreachable"


class Upstream(StrEnum):
    """The verdict on an NTU's ancestors (see the module docstring)."""

    CLEAR = "clear"
    PENDING = "pending"
    DOWN = "down"


# Where each status may go on each kind of event (the table in the docstring, as data;
# the tests check every step against it).
TRANSITIONS: dict[tuple[Status, str], frozenset[Status]] = {
    (Status.UNKNOWN, "ok"): frozenset({Status.UP, Status.RECOVERING}),
    (Status.UNKNOWN, "fail"): frozenset({Status.SUSPECT, Status.DOWN, Status.UNREACHABLE}),
    (Status.UNKNOWN, "tick"): frozenset({Status.UNKNOWN}),
    (Status.UP, "ok"): frozenset({Status.UP}),
    (Status.UP, "fail"): frozenset({Status.SUSPECT, Status.UNREACHABLE}),
    (Status.UP, "tick"): frozenset({Status.UP, Status.UNKNOWN}),
    (Status.SUSPECT, "ok"): frozenset({Status.UP}),
    (Status.SUSPECT, "fail"): frozenset({Status.SUSPECT, Status.DOWN, Status.UNREACHABLE}),
    (Status.SUSPECT, "tick"): frozenset({Status.SUSPECT, Status.UNKNOWN}),
    (Status.DOWN, "ok"): frozenset({Status.RECOVERING, Status.UP}),
    (Status.DOWN, "fail"): frozenset({Status.DOWN}),
    (Status.DOWN, "tick"): frozenset({Status.DOWN, Status.UNKNOWN}),
    (Status.RECOVERING, "ok"): frozenset({Status.RECOVERING, Status.UP}),
    (Status.RECOVERING, "fail"): frozenset({Status.DOWN}),
    (Status.RECOVERING, "tick"): frozenset({Status.RECOVERING, Status.UNKNOWN}),
    (Status.UNREACHABLE, "ok"): frozenset({Status.UP}),
    (Status.UNREACHABLE, "fail"): frozenset({Status.UNREACHABLE, Status.SUSPECT, Status.DOWN}),
    (Status.UNREACHABLE, "tick"): frozenset({Status.UNREACHABLE, Status.UNKNOWN}),
}


@dataclass(frozen=True, slots=True)
class Rules:
    """The thresholds, from ``detector.*`` settings."""

    down_after: timedelta
    restore_after: int
    stale_after: timedelta

    def __post_init__(self) -> None:
        if self.down_after <= timedelta(0) or self.stale_after <= timedelta(0):
            raise ValueError("down_after and stale_after must be positive")
        if self.restore_after < 1:
            raise ValueError("restore_after must be at least 1")


@dataclass(frozen=True, slots=True)
class NtuState:
    status: Status
    since: datetime
    outage_start: datetime | None = None
    """First failed probe of the current suspected or confirmed outage."""
    confirm_from: datetime | None = None
    """Where the ``down_after`` clock started: the outage start, or the end of a
    maintenance window (mute) the failure began in."""
    first_good_at: datetime | None = None
    """First success of the current recovery streak (the end of the impact)."""
    good_streak: int = 0
    last_observation_at: datetime | None = None
    last_success_at: datetime | None = None
    case_open: bool = False

    @classmethod
    def initial(cls, now: datetime) -> NtuState:
        return cls(status=Status.UNKNOWN, since=now)


@dataclass(frozen=True, slots=True)
class Observed:
    """One probe cycle's verdict for one NTU, at the time its probe was sent.

    ``mute_until``: the NTU is in a maintenance window (mute) ending then; a failure
    does not count towards ``down_after`` before that time.
    """

    at: datetime
    ok: bool
    mute_until: datetime | None = None
    upstream: Upstream = Upstream.CLEAR
    upstream_since: datetime | None = None
    """With ``upstream`` clear: when the last ancestor outage ended (restoration)."""


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passes: evaluate staleness."""


Event = Observed | Tick


@dataclass(frozen=True, slots=True)
class OpenCase:
    outage_start: datetime
    detected_at: datetime


@dataclass(frozen=True, slots=True)
class RestoreCase:
    restored_at: datetime


@dataclass(frozen=True, slots=True)
class WentStale:
    """No data for ``stale_after``: a NOC alert, never a customer case."""

    last_observation_at: datetime | None


Action = OpenCase | RestoreCase | WentStale


def step(
    state: NtuState, event: Event, now: datetime, rules: Rules
) -> tuple[NtuState, list[Action]]:
    """Apply one event; return the new state and the actions to execute."""
    if isinstance(event, Tick):
        return _check_stale(state, now, rules)
    if state.last_observation_at is not None and event.at < state.last_observation_at:
        return state, []
    # A gap in the data longer than stale_after breaks continuity, even if no Tick
    # saw it (e.g. the process was stopped): the failure before the gap and the one
    # after it are not one continuous outage.
    state, actions = _check_stale(state, event.at, rules)
    if event.ok:
        new, more = _on_success(state, event.at, now, rules)
    else:
        new, more = _on_failure(state, event, now, rules)
    return new, actions + more


def _change(state: NtuState, status: Status, at: datetime, **fields: object) -> NtuState:
    since = state.since if status == state.status else at
    return replace(state, status=status, since=since, **fields)  # type: ignore[arg-type]


def _check_stale(state: NtuState, now: datetime, rules: Rules) -> tuple[NtuState, list[Action]]:
    if state.status == Status.UNKNOWN or state.last_observation_at is None:
        return state, []
    if now - state.last_observation_at < rules.stale_after:
        return state, []
    stale_at = state.last_observation_at + rules.stale_after
    new = _change(
        state,
        Status.UNKNOWN,
        stale_at,
        # A suspected outage without data to confirm it is forgotten; a confirmed
        # one keeps its start (the case stays open).
        outage_start=state.outage_start if state.case_open else None,
        confirm_from=state.confirm_from if state.case_open else None,
        first_good_at=None,
        good_streak=0,
    )
    return new, [WentStale(last_observation_at=state.last_observation_at)]


def _on_success(
    state: NtuState, at: datetime, now: datetime, rules: Rules
) -> tuple[NtuState, list[Action]]:
    if not state.case_open:
        # Built directly (``replace`` costs several times more): every success of an
        # NTU that is up comes here.
        since = state.since if state.status == Status.UP else at
        return NtuState(
            status=Status.UP, since=since, last_observation_at=at, last_success_at=at
        ), []
    seen = {"last_observation_at": at, "last_success_at": at}
    streak = state.good_streak + 1
    first_good = state.first_good_at or at
    if streak >= rules.restore_after:
        new = _change(
            state,
            Status.UP,
            at,
            outage_start=None,
            confirm_from=None,
            first_good_at=None,
            good_streak=0,
            case_open=False,
            **seen,
        )
        return new, [RestoreCase(restored_at=first_good)]
    return _change(
        state, Status.RECOVERING, at, first_good_at=first_good, good_streak=streak, **seen
    ), []


def _on_failure(
    state: NtuState, event: Observed, now: datetime, rules: Rules
) -> tuple[NtuState, list[Action]]:
    at, mute_until = event.at, event.mute_until
    seen = {"last_observation_at": at}
    if state.case_open:
        return _change(state, Status.DOWN, at, first_good_at=None, good_streak=0, **seen), []
    start = state.outage_start or at
    if event.upstream == Upstream.DOWN:
        # Behind a confirmed upstream outage: covered by its incident, no clock here.
        new = _change(state, Status.UNREACHABLE, at, outage_start=start, confirm_from=None, **seen)
        return new, []
    confirm_from = state.confirm_from or start
    if state.status == Status.UNREACHABLE:
        # The ancestor is back and this NTU is not: its own clock starts at the
        # ancestor's restoration (or now, if that is not known).
        since = event.upstream_since
        confirm_from = since if since is not None and start <= since <= at else at
    if mute_until is not None and at < mute_until:
        # In maintenance: the clock restarts with every muted failure, so it effectively
        # starts when the window ends - also when the window is ended early.
        confirm_from = at
    if event.upstream == Upstream.CLEAR and at - confirm_from >= rules.down_after:
        new = _change(
            state,
            Status.DOWN,
            at,
            outage_start=start,
            confirm_from=confirm_from,
            case_open=True,
            **seen,
        )
        return new, [OpenCase(outage_start=confirm_from, detected_at=max(now, at))]
    new = _change(state, Status.SUSPECT, at, outage_start=start, confirm_from=confirm_from, **seen)
    return new, []
