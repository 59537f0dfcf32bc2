"""Degraded or intermittent service: the P2 rules, as a pure state machine.

How it works. The detector feeds three kinds of samples per NTU:

* ``Burst``: one ICMP burst (sent, received, average RTT). Fed only while the NTU is
  available (``up``): a dead NTU is the availability machine's business (P1), and
  counting its 100 % loss here would open a P2 for every outage.
* ``Reachability``: whether each burst got any answer at all, fed always; the
  changes between answering and not answering are the flaps.
* ``ErrorRate``: interface errors + discards per second, from SNMP counter deltas.

Over a sliding ``window`` (15 min by default) four rules are evaluated: sustained
loss (loss over the window >= ``loss_open``), latency (average RTT over the window
>= ``latency_open``), interface errors (average rate >= ``errors_open``) and
flapping (>= ``flap_count`` transitions within ``flap_window``). Loss, latency and
errors are "sustained" only when the samples cover most of the window
(``coverage``), so a single bad burst right after start-up opens nothing.

Hysteresis. A rule that opened stays active until its value drops below a lower
clear threshold (``*_clear``) - a window without enough samples to judge keeps it
active; the NTU is healthy again only when every rule has been clear for
``clear_after``. So a P2 does not open and close every cycle when a
value hovers around its threshold.

The actions are ``OpenDegraded`` (reasons and the time the first active rule's bad
samples began) and ``ClearDegraded`` (the time every rule went clear). ``reset``
forgets everything, for when a P1 takes over the case or the NTU was down.
"""

from __future__ import annotations

import math
import struct
from bisect import bisect_right
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum


class Reason(StrEnum):
    LOSS = "loss"
    LATENCY = "latency"
    ERRORS = "errors"
    FLAPPING = "flapping"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """P2 thresholds; the defaults come from settings, a service profile overrides."""

    window: timedelta = timedelta(minutes=15)
    coverage: float = 0.8
    loss_open: float = 0.05
    loss_clear: float = 0.02
    latency_open: timedelta | None = timedelta(milliseconds=150)
    latency_clear: timedelta | None = timedelta(milliseconds=120)
    errors_open: float | None = 1.0
    errors_clear: float | None = 0.2
    flap_count: int = 4
    flap_window: timedelta = timedelta(minutes=15)
    clear_after: timedelta = timedelta(minutes=10)
    # Derived in __post_init__ (epoch microseconds, seconds), so that a step, which runs
    # for every sample of every NTU, does no timedelta arithmetic.
    window_us: int = field(init=False, repr=False, compare=False)
    covered_us: int = field(init=False, repr=False, compare=False)
    flap_window_us: int = field(init=False, repr=False, compare=False)
    latency_open_s: float | None = field(init=False, repr=False, compare=False)
    latency_clear_s: float | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.window <= timedelta(0) or self.flap_window <= timedelta(0):
            raise ValueError("window and flap_window must be positive")
        if self.clear_after < timedelta(0):
            raise ValueError("clear_after must not be negative")
        if not 0 < self.coverage <= 1:
            raise ValueError("coverage must be in (0, 1]")
        if not 0 <= self.loss_clear <= self.loss_open <= 1:
            raise ValueError("need 0 <= loss_clear <= loss_open <= 1")
        if (self.latency_open is None) != (self.latency_clear is None) or (
            self.latency_open is not None
            and self.latency_clear is not None
            and self.latency_clear > self.latency_open
        ):
            raise ValueError("latency_clear must be set with latency_open and not above it")
        if (self.errors_open is None) != (self.errors_clear is None) or (
            self.errors_open is not None
            and self.errors_clear is not None
            and not 0 <= self.errors_clear <= self.errors_open
        ):
            raise ValueError("errors_clear must be set with errors_open and not above it")
        if self.flap_count < 2:
            raise ValueError("flap_count must be at least 2")
        derived = {
            "window_us": self.window // _US,
            "covered_us": (self.window * self.coverage) // _US,
            "flap_window_us": self.flap_window // _US,
            # A zero latency threshold turns the rule off, as an unset one does.
            "latency_open_s": self.latency_open.total_seconds() if self.latency_open else None,
            "latency_clear_s": self.latency_clear.total_seconds() if self.latency_clear else None,
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)


@dataclass(frozen=True, slots=True)
class Burst:
    at: datetime
    sent: int
    received: int
    rtt_avg: float | None  # seconds


@dataclass(frozen=True, slots=True)
class Reachability:
    at: datetime
    reachable: bool


@dataclass(frozen=True, slots=True)
class ErrorRate:
    at: datetime
    per_second: float


Sample = Burst | Reachability | ErrorRate


# The window is kept packed, one immutable ``bytes`` column per field (read through
# ``memoryview.cast``), times as integer epoch microseconds: 100,000 NTUs hold ~30
# bursts each, and a frozen ``Burst`` with its ``datetime`` costs several times the
# bytes it takes here (~1.5 KB per NTU for a full window instead of ~5.4 KB). Counts
# have running totals; the float averages are summed over the column in C (``sum``
# over the memoryview), in the order the old tuple was summed, so every figure is
# bit for bit what it was (tests/nms/detector/test_degradation_window.py). Appending
# or trimming copies a column (a memcpy of a few hundred bytes); the Python work per
# step is constant.
_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TIME = struct.Struct("q")  # epoch microseconds; "q" is what memoryview.cast reads
_COUNT = struct.Struct("i")
_VALUE = struct.Struct("d")
_NO_RTT = math.nan


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // _US


def _datetime(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _first(times: bytes) -> int:
    return int(_TIME.unpack_from(times)[0])


def _last(times: bytes) -> int:
    return int(_TIME.unpack_from(times, len(times) - _TIME.size)[0])


def _aged(times: bytes, since: int) -> int:
    """How many leading entries of an ascending time column are at or before ``since``."""
    if not times or _first(times) > since:
        return 0
    return bisect_right(memoryview(times).cast("q"), since)


def _after(times: bytes, since: int) -> bytes:
    return times[_aged(times, since) * _TIME.size :]


@dataclass(frozen=True, slots=True)
class BurstWindow:
    """The bursts in the window, in time order (columns of equal length)."""

    at: bytes = b""
    sent: bytes = b""
    received: bytes = b""
    rtt: bytes = b""  # seconds; NaN for a burst without one (no echo came back)
    sent_total: int = 0
    received_total: int = 0
    untimed: int = 0  # the bursts without an RTT
    lossy_at: bytes = b""  # the times of the bursts that lost an echo

    def add(self, burst: Burst) -> BurstWindow:
        at = _TIME.pack(_micros(burst.at))
        rtt = burst.rtt_avg
        return BurstWindow(
            at=self.at + at,
            sent=self.sent + _COUNT.pack(burst.sent),
            received=self.received + _COUNT.pack(burst.received),
            rtt=self.rtt + _VALUE.pack(_NO_RTT if rtt is None else rtt),
            sent_total=self.sent_total + burst.sent,
            received_total=self.received_total + burst.received,
            untimed=self.untimed + (rtt is None),
            lossy_at=self.lossy_at + at if burst.received < burst.sent else self.lossy_at,
        )

    def trim(self, since: int) -> BurstWindow:
        """Drop the bursts at or before ``since`` (epoch microseconds)."""
        n = _aged(self.at, since)
        if not n:
            return self  # lossy_at holds a subset of these times
        dropped = memoryview(self.rtt).cast("d")[:n]
        return BurstWindow(
            at=self.at[n * _TIME.size :],
            sent=self.sent[n * _COUNT.size :],
            received=self.received[n * _COUNT.size :],
            rtt=self.rtt[n * _VALUE.size :],
            sent_total=self.sent_total - sum(memoryview(self.sent).cast("i")[:n]),
            received_total=self.received_total - sum(memoryview(self.received).cast("i")[:n]),
            untimed=self.untimed - sum(1 for r in dropped if r != r) if self.untimed else 0,
            lossy_at=_after(self.lossy_at, since),
        )

    def latency(self) -> float | None:
        """The average RTT of the bursts that have one; None if none has."""
        timed = len(self.rtt) // _VALUE.size - self.untimed
        if not timed:
            return None
        rtts = memoryview(self.rtt).cast("d")
        # Summed in time order, as the old tuple of samples was: the same float.
        return (sum(rtts) if not self.untimed else sum(r for r in rtts if r == r)) / timed

    def first_at_least(self, rtt: float) -> datetime | None:
        """The time of the first burst whose RTT is at least ``rtt`` (a walk: rarely)."""
        rtts = memoryview(self.rtt).cast("d")
        i = next((i for i, r in enumerate(rtts) if r >= rtt), None)  # NaN >= x is False
        return None if i is None else _datetime(int(_TIME.unpack_from(self.at, i * _TIME.size)[0]))

    def bursts(self) -> tuple[Burst, ...]:
        """The bursts as samples again (for tests and debugging; not on the hot path)."""
        return tuple(
            Burst(_datetime(at), sent, received, None if rtt != rtt else rtt)
            for at, sent, received, rtt in zip(
                memoryview(self.at).cast("q"),
                memoryview(self.sent).cast("i"),
                memoryview(self.received).cast("i"),
                memoryview(self.rtt).cast("d"),
                strict=True,
            )
        )


@dataclass(frozen=True, slots=True)
class RateWindow:
    """The error rates in the window, in time order."""

    at: bytes = b""
    rate: bytes = b""
    erring_at: bytes = b""  # the samples with a rate above 0

    def add(self, sample: ErrorRate) -> RateWindow:
        at = _TIME.pack(_micros(sample.at))
        return RateWindow(
            at=self.at + at,
            rate=self.rate + _VALUE.pack(sample.per_second),
            erring_at=self.erring_at + at if sample.per_second > 0 else self.erring_at,
        )

    def trim(self, since: int) -> RateWindow:
        n = _aged(self.at, since)
        if not n:
            return self
        return RateWindow(
            at=self.at[n * _TIME.size :],
            rate=self.rate[n * _VALUE.size :],
            erring_at=_after(self.erring_at, since),
        )


_NO_BURSTS = BurstWindow()
_NO_RATES = RateWindow()


@dataclass(frozen=True, slots=True)
class QualityState:
    burst_window: BurstWindow = _NO_BURSTS
    error_window: RateWindow = _NO_RATES
    flaps: tuple[datetime, ...] = ()
    last_reachable: bool | None = None
    active: frozenset[Reason] = frozenset()
    degraded: bool = False
    clear_since: datetime | None = None

    @property
    def bursts(self) -> tuple[Burst, ...]:
        return self.burst_window.bursts()


@dataclass(frozen=True, slots=True)
class OpenDegraded:
    reasons: frozenset[Reason]
    start: datetime
    detail: str


@dataclass(frozen=True, slots=True)
class ClearDegraded:
    at: datetime


Action = OpenDegraded | ClearDegraded


@dataclass(frozen=True, slots=True)
class Figures:
    """What the rules saw, for the case summary and the API."""

    loss: float | None = None
    latency: float | None = None
    error_rate: float | None = None
    flaps: int = 0
    starts: dict[Reason, datetime] = field(default_factory=dict)


def reset(state: QualityState) -> QualityState:
    """Forget samples and verdicts (a P1 took over, or the NTU was down)."""
    return QualityState(last_reachable=state.last_reachable)


def step(
    state: QualityState, sample: Sample, now: datetime, thresholds: Thresholds
) -> tuple[QualityState, list[Action]]:
    """Add one sample, re-evaluate the rules, and return the actions."""
    now_us = _micros(now)
    state = _add(state, sample)
    state = _trim(state, now, now_us, thresholds)
    loss, latency, error_rate = _values(state, now_us, thresholds)
    active = _active(state.active, loss, latency, error_rate, len(state.flaps), thresholds)
    if active != state.active:
        state = replace(state, active=active)
    # (Each state is built only when it changes: this runs twice per NTU and burst.)
    if not state.degraded:
        if active:
            # The starts take a walk over the window: only when a P2 opens.
            figures = measure(state, now, thresholds)
            start = min((figures.starts[r] for r in active if r in figures.starts), default=now)
            detail = describe(figures, active)
            return replace(state, degraded=True, clear_since=None), [
                OpenDegraded(reasons=active, start=start, detail=detail)
            ]
        return state, []
    if active:
        return (state if state.clear_since is None else replace(state, clear_since=None)), []
    clear_since = state.clear_since or now
    if now - clear_since >= thresholds.clear_after:
        return replace(state, degraded=False, clear_since=None), [ClearDegraded(at=clear_since)]
    if clear_since == state.clear_since:
        return state, []
    return replace(state, clear_since=clear_since), []


def _add(state: QualityState, sample: Sample) -> QualityState:
    if isinstance(sample, Burst):
        window = state.burst_window
        if window.at and _micros(sample.at) <= _last(window.at):
            return state
        return _with(state, window.add(sample), state.error_window, state.flaps)
    if isinstance(sample, ErrorRate):
        errors = state.error_window
        if errors.at and _micros(sample.at) <= _last(errors.at):
            return state
        return _with(state, state.burst_window, errors.add(sample), state.flaps)
    if sample.reachable == state.last_reachable:
        return state
    if state.last_reachable is None:
        return replace(state, last_reachable=sample.reachable)
    return replace(state, last_reachable=sample.reachable, flaps=(*state.flaps, sample.at))


def _with(
    state: QualityState, bursts: BurstWindow, errors: RateWindow, flaps: tuple[datetime, ...]
) -> QualityState:
    # (``dataclasses.replace`` costs ~3x this; it runs for most samples.)
    return QualityState(
        bursts,
        errors,
        flaps,
        state.last_reachable,
        state.active,
        state.degraded,
        state.clear_since,
    )


def _trim(state: QualityState, now: datetime, now_us: int, t: Thresholds) -> QualityState:
    since = now_us - t.window_us
    bursts = state.burst_window.trim(since)
    errors = state.error_window.trim(since)
    flaps = state.flaps
    if flaps:
        # Flaps are few, and kept in the order they came (not necessarily time order).
        flap_since = now - t.flap_window
        if min(flaps) <= flap_since:
            flaps = tuple(f for f in flaps if f > flap_since)
    if bursts is state.burst_window and errors is state.error_window and flaps is state.flaps:
        return state
    return _with(state, bursts, errors, flaps)


def _covered(times: bytes, now: int, t: Thresholds) -> bool:
    return bool(times) and now - _first(times) >= t.covered_us


def _values(
    state: QualityState, now: int, t: Thresholds
) -> tuple[float | None, float | None, float | None]:
    """Loss, latency and error rate over the window (None where there is too little data)."""
    loss = latency = error_rate = None
    bursts = state.burst_window
    if _covered(bursts.at, now, t):
        if bursts.sent_total:
            loss = 1 - bursts.received_total / bursts.sent_total
        latency = bursts.latency()
    errors = state.error_window
    if _covered(errors.at, now, t):
        error_rate = sum(memoryview(errors.rate).cast("d")) / (len(errors.rate) // _VALUE.size)
    return loss, latency, error_rate


def measure(state: QualityState, now: datetime, t: Thresholds) -> Figures:
    """The rules' current values over the window (None where there is too little data)."""
    loss, latency, error_rate = _values(state, _micros(now), t)
    starts: dict[Reason, datetime] = {}
    bursts = state.burst_window
    if loss is not None and bursts.lossy_at:
        starts[Reason.LOSS] = _datetime(_first(bursts.lossy_at))
    if latency is not None and t.latency_open is not None:
        first_slow = bursts.first_at_least(t.latency_open.total_seconds())
        if first_slow is not None:
            starts[Reason.LATENCY] = first_slow
    if error_rate is not None and state.error_window.erring_at:
        starts[Reason.ERRORS] = _datetime(_first(state.error_window.erring_at))
    if state.flaps:
        starts[Reason.FLAPPING] = state.flaps[0]
    return Figures(
        loss=loss, latency=latency, error_rate=error_rate, flaps=len(state.flaps), starts=starts
    )


def _active(
    previous: frozenset[Reason],
    loss: float | None,
    latency: float | None,
    error_rate: float | None,
    flaps: int,
    t: Thresholds,
) -> frozenset[Reason]:
    """Rules over their open threshold, or still over their clear threshold if active."""
    active: set[Reason] = set()

    def over(reason: Reason, value: float | None, open_: float | None, clear: float | None) -> None:
        if open_ is None or clear is None:
            return
        if value is None:
            # Too little data to judge is not a recovery: an active rule stays active.
            if reason in previous:
                active.add(reason)
            return
        limit = clear if reason in previous else open_
        # Hysteresis: once open, a rule clears only below the lower threshold.
        if (value > limit) if reason in previous else (value >= limit):
            active.add(reason)

    over(Reason.LOSS, loss, t.loss_open, t.loss_clear)
    over(Reason.LATENCY, latency, t.latency_open_s, t.latency_clear_s)
    over(Reason.ERRORS, error_rate, t.errors_open, t.errors_clear)
    flapping_limit = 1 if Reason.FLAPPING in previous else t.flap_count
    if flaps >= flapping_limit:
        active.add(Reason.FLAPPING)
    return frozenset(active)


def describe(f: Figures, reasons: frozenset[Reason]) -> str:
    parts = []
    if Reason.LOSS in reasons and f.loss is not None:
        parts.append(f"{f.loss:.0%} packet loss")
    if Reason.LATENCY in reasons and f.latency is not None:
        parts.append(f"average RTT {f.latency * 1000:.0f} ms")
    if Reason.ERRORS in reasons and f.error_rate is not None:
        parts.append(f"{f.error_rate:.1f} interface errors/s")
    if Reason.FLAPPING in reasons:
        parts.append(f"{f.flaps} up/down changes")
    return ", ".join(parts)
