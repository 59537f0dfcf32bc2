"""The P2 rules as they were before the window was packed: the reference that
tests/nms/detector/test_degradation_window.py checks the packed window against.

A frozen copy of nms/detector/degradation.py at 4630e7a (samples kept as a tuple of
frozen dataclasses, every figure recomputed by a full walk). Do not edit.

Original docstring: Degraded or intermittent service: the P2 rules, as a pure state machine.

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

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
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


@dataclass(frozen=True, slots=True)
class QualityState:
    bursts: tuple[Burst, ...] = ()
    errors: tuple[ErrorRate, ...] = ()
    flaps: tuple[datetime, ...] = ()
    last_reachable: bool | None = None
    active: frozenset[Reason] = frozenset()
    degraded: bool = False
    clear_since: datetime | None = None


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
    state = _add(state, sample, thresholds)
    state = _trim(state, now, thresholds)
    figures = measure(state, now, thresholds)
    active = _active(state.active, figures, thresholds)
    if active != state.active:
        state = replace(state, active=active)
    # (Each state is built only when it changes: this runs twice per NTU and burst.)
    if not state.degraded:
        if active:
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


def _add(state: QualityState, sample: Sample, t: Thresholds) -> QualityState:
    if isinstance(sample, Burst):
        if state.bursts and sample.at <= state.bursts[-1].at:
            return state
        return replace(state, bursts=(*state.bursts, sample))
    if isinstance(sample, ErrorRate):
        if state.errors and sample.at <= state.errors[-1].at:
            return state
        return replace(state, errors=(*state.errors, sample))
    if sample.reachable == state.last_reachable:
        return state
    if state.last_reachable is None:
        return replace(state, last_reachable=sample.reachable)
    return replace(state, last_reachable=sample.reachable, flaps=(*state.flaps, sample.at))


def _trim(state: QualityState, now: datetime, t: Thresholds) -> QualityState:
    since = now - t.window
    flap_since = now - t.flap_window
    # Bursts and error rates are kept in time order (``_add``): nothing to drop unless
    # the oldest has aged out.
    if (
        (not state.bursts or state.bursts[0].at > since)
        and (not state.errors or state.errors[0].at > since)
        and (not state.flaps or min(state.flaps) > flap_since)
    ):
        return state
    return replace(
        state,
        bursts=tuple(b for b in state.bursts if b.at > since),
        errors=tuple(e for e in state.errors if e.at > since),
        flaps=tuple(f for f in state.flaps if f > flap_since),
    )


def _covered(times: list[datetime], now: datetime, t: Thresholds) -> bool:
    return bool(times) and now - times[0] >= t.window * t.coverage


def measure(state: QualityState, now: datetime, t: Thresholds) -> Figures:
    """The rules' current values over the window (None where there is too little data)."""
    starts: dict[Reason, datetime] = {}
    loss = latency = error_rate = None
    bursts = state.bursts
    if _covered([b.at for b in bursts], now, t):
        sent = sum(b.sent for b in bursts)
        if sent:
            loss = 1 - sum(b.received for b in bursts) / sent
            lossy = [b.at for b in bursts if b.received < b.sent]
            if lossy:
                starts[Reason.LOSS] = lossy[0]
        rtts = [b.rtt_avg for b in bursts if b.rtt_avg is not None]
        if rtts:
            latency = sum(rtts) / len(rtts)
            if t.latency_open is not None:
                slow = [
                    b.at
                    for b in bursts
                    if b.rtt_avg is not None and b.rtt_avg >= t.latency_open.total_seconds()
                ]
                if slow:
                    starts[Reason.LATENCY] = slow[0]
    if _covered([e.at for e in state.errors], now, t):
        error_rate = sum(e.per_second for e in state.errors) / len(state.errors)
        erring = [e.at for e in state.errors if e.per_second > 0]
        if erring:
            starts[Reason.ERRORS] = erring[0]
    if state.flaps:
        starts[Reason.FLAPPING] = state.flaps[0]
    return Figures(
        loss=loss, latency=latency, error_rate=error_rate, flaps=len(state.flaps), starts=starts
    )


def _active(previous: frozenset[Reason], f: Figures, t: Thresholds) -> frozenset[Reason]:
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

    over(Reason.LOSS, f.loss, t.loss_open, t.loss_clear)
    over(
        Reason.LATENCY,
        f.latency,
        t.latency_open.total_seconds() if t.latency_open else None,
        t.latency_clear.total_seconds() if t.latency_clear else None,
    )
    over(Reason.ERRORS, f.error_rate, t.errors_open, t.errors_clear)
    flapping_limit = 1 if Reason.FLAPPING in previous else t.flap_count
    if f.flaps >= flapping_limit:
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
