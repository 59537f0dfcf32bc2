"""The P2 rules: each rule opens, hysteresis holds, clearing takes clear_after."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from nms.detector.degradation import (
    Action,
    Burst,
    ClearDegraded,
    ErrorRate,
    OpenDegraded,
    QualityState,
    Reachability,
    Reason,
    Sample,
    Thresholds,
    reset,
    step,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
S = timedelta(seconds=1)
T = Thresholds()  # 15 min window, 5 % loss, 150 ms, 1 error/s, 4 flaps, clear after 10 min
CYCLE = 30 * S


def feed(
    samples: Sequence[Sample], state: QualityState | None = None, thresholds: Thresholds = T
) -> tuple[QualityState, list[tuple[datetime, Action]]]:
    state = state or QualityState()
    actions: list[tuple[datetime, Action]] = []
    for sample in samples:
        state, acts = step(state, sample, sample.at, thresholds)
        actions += [(sample.at, a) for a in acts]
    return state, actions


def bursts(
    start: datetime, minutes: float, *, lost: int = 0, rtt: float = 0.01, sent: int = 5
) -> list[Burst]:
    n = int(minutes * 60 / 30)
    return [
        Burst(at=start + i * CYCLE, sent=sent, received=sent - lost, rtt_avg=rtt) for i in range(n)
    ]


def test_healthy_opens_nothing():
    _, actions = feed(bursts(T0, 60))
    assert actions == []


def test_sustained_loss_opens_once_after_the_window_is_covered():
    _, actions = feed(bursts(T0, 30, lost=1))  # 20 % loss
    opens = [(t, a) for t, a in actions if isinstance(a, OpenDegraded)]
    assert len(opens) == 1
    at, action = opens[0]
    assert action.reasons == {Reason.LOSS}
    assert action.start == T0
    assert at - T0 >= T.window * T.coverage
    assert "20% packet loss" in action.detail


def test_loss_below_threshold_opens_nothing():
    samples = bursts(T0, 60)
    # one lost echo in 25 bursts (125 echoes): 0.8 %
    samples = [
        Burst(b.at, b.sent, b.received - (1 if i % 25 == 0 else 0), b.rtt_avg)
        for i, b in enumerate(samples)
    ]
    assert feed(samples)[1] == []


def test_latency_opens_and_clears_with_hysteresis():
    state, actions = feed(bursts(T0, 20, rtt=0.3))
    assert [a.reasons for _, a in actions if isinstance(a, OpenDegraded)] == [{Reason.LATENCY}]
    # 130 ms: below the open threshold, above the clear one: stays degraded.
    state, actions = feed(bursts(T0 + 20 * 60 * S, 40, rtt=0.13), state)
    assert actions == []
    assert state.degraded
    # Back to 10 ms: clears once the window forgets the slow samples + clear_after.
    state, actions = feed(bursts(T0 + 60 * 60 * S, 40, rtt=0.01), state)
    clears = [(t, a) for t, a in actions if isinstance(a, ClearDegraded)]
    assert len(clears) == 1
    at, clear = clears[0]
    assert at - clear.at >= T.clear_after
    assert not state.degraded


def test_flapping_opens():
    samples = [Reachability(at=T0 + i * CYCLE, reachable=(i // 2) % 2 == 0) for i in range(12)]
    _, actions = feed(samples)
    (opened,) = [a for _, a in actions if isinstance(a, OpenDegraded)]
    assert opened.reasons == {Reason.FLAPPING}
    assert "up/down changes" in opened.detail


def test_three_flaps_are_not_flapping():
    # Two short outages are four changes, but 17 minutes apart: two per 15 min window.
    samples = [Reachability(T0 + i * 60 * S, reachable=i not in (3, 20)) for i in range(40)]
    assert feed(samples)[1] == []


def test_interface_errors_open():
    samples = [ErrorRate(at=T0 + i * 60 * S, per_second=5.0) for i in range(20)]
    _, actions = feed(samples)
    assert [a.reasons for _, a in actions if isinstance(a, OpenDegraded)] == [{Reason.ERRORS}]


def test_reset_forgets():
    state, _ = feed(bursts(T0, 20, lost=2))
    assert state.degraded
    state = reset(state)
    assert not state.degraded
    assert state.bursts == ()


def test_thresholds_are_validated():
    import pytest

    with pytest.raises(ValueError, match="loss_clear"):
        Thresholds(loss_open=0.01, loss_clear=0.05)
    with pytest.raises(ValueError, match="flap_count"):
        Thresholds(flap_count=1)


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    loss_p=st.floats(min_value=0, max_value=0.5),
    cycles=st.integers(min_value=10, max_value=300),
)
def test_no_chatter_and_alternating_actions(seed, loss_p, cycles):
    """Opens and clears alternate, and a clear always follows clear_after of health."""
    rng = random.Random(seed)
    state = QualityState()
    last_kind: type[OpenDegraded] | type[ClearDegraded] = ClearDegraded
    for i in range(cycles):
        at = T0 + i * CYCLE
        phase_loss = loss_p if (i // 40) % 2 == 0 else 0.0
        received = sum(rng.random() >= phase_loss for _ in range(5))
        for sample in (
            Reachability(at, received > 0),
            Burst(at, 5, received, 0.01 if received else None),
        ):
            state, actions = step(state, sample, at, T)
            for action in actions:
                assert not isinstance(action, last_kind)
                last_kind = type(action)
                if isinstance(action, ClearDegraded):
                    assert at - action.at >= T.clear_after
                else:
                    assert action.start <= at
        assert state.degraded == (last_kind is OpenDegraded)
