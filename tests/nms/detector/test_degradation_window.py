"""The packed window decides exactly as the tuple-of-samples window did.

Random sample sequences (bursts with loss and slow or missing RTTs, error rates,
reachability flaps, duplicates and samples out of order, gaps longer than the window,
resets) go through the reference copy of the old machine and through the new one:
the actions, the figures and the verdicts must be equal, bit for bit.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from nms.detector import degradation as new
from tests.nms.detector import degradation_reference as old

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _thresholds(module: ModuleType, rng: random.Random) -> Any:
    errors = rng.random() < 0.8
    latency = rng.choice([(150, 120), (150, 120), (150, 120), (150, 0), (0, 0)])
    return module.Thresholds(
        window=timedelta(minutes=rng.choice([1, 5, 15])),
        coverage=rng.choice([0.5, 0.8, 1.0]),
        flap_count=rng.choice([2, 4]),
        flap_window=timedelta(minutes=rng.choice([2, 15])),
        clear_after=timedelta(minutes=rng.choice([0, 1, 10])),
        errors_open=1.0 if errors else None,
        errors_clear=0.2 if errors else None,
        # (A zero threshold turns the rule off: the old machine tested its truth.)
        latency_open=timedelta(milliseconds=latency[0]),
        latency_clear=timedelta(milliseconds=latency[1]),
    )


def _samples(rng: random.Random, count: int) -> list[tuple[str, datetime, tuple[Any, ...]]]:
    """(kind, at, args) tuples; the same list builds the old and the new samples."""
    at = T0
    bad = rng.random() < 0.5
    out: list[tuple[str, datetime, tuple[Any, ...]]] = []
    for _ in range(count):
        step = rng.choice([0, 1, 7, 30, 30, 30, 59.999999, 60, 600, 1800])
        at += timedelta(seconds=step, microseconds=rng.choice([0, 0, 1, 123457]))
        if rng.random() < 0.05:
            bad = not bad
        when = at - timedelta(seconds=rng.choice([0, 0, 0, 0, 30, 45]))  # some out of order
        kind = rng.choice(["burst", "burst", "burst", "reach", "error"])
        if kind == "burst":
            sent = rng.choice([0, 1, 5, 5, 5])
            lost = rng.randint(0, sent) if bad and rng.random() < 0.4 else 0
            received = sent - lost
            rtt = (
                None
                if received == 0 or rng.random() < 0.05
                else rng.uniform(0.1, 0.2)
                if bad
                else rng.uniform(0.001, 0.16)
            )
            out.append(("burst", when, (sent, received, rtt)))
        elif kind == "reach":
            out.append(("reach", when, (rng.random() < (0.5 if bad else 0.95),)))
        else:
            rate = rng.choice([0.0, 0.0, rng.uniform(0, 0.3), rng.uniform(0.1, 3.0) if bad else 0])
            out.append(("error", when, (rate,)))
        if rng.random() < 0.01:
            out.append(("reset", when, ()))
    return out


def _sample(module: ModuleType, kind: str, at: datetime, args: tuple[Any, ...]) -> Any:
    if kind == "burst":
        return module.Burst(at, *args)
    if kind == "reach":
        return module.Reachability(at, *args)
    return module.ErrorRate(at, *args)


def _same_action(a: Any, b: Any) -> bool:
    if isinstance(a, old.OpenDegraded):
        return (
            isinstance(b, new.OpenDegraded)
            and {r.value for r in a.reasons} == {r.value for r in b.reasons}
            and a.start == b.start
            and a.detail == b.detail
        )
    return isinstance(b, new.ClearDegraded) and a.at == b.at


def _same_figures(a: Any, b: Any) -> bool:
    return (
        a.loss == b.loss
        and a.latency == b.latency
        and a.error_rate == b.error_rate
        and a.flaps == b.flaps
        and {r.value: at for r, at in a.starts.items()}
        == {r.value: at for r, at in b.starts.items()}
    )


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_the_packed_window_decides_as_the_old_one(seed):
    rng = random.Random(seed)
    old_t, new_t = _thresholds(old, random.Random(seed)), _thresholds(new, random.Random(seed))
    old_state, new_state = old.QualityState(), new.QualityState()
    opened = 0
    for kind, at, args in _samples(rng, rng.randint(1, 400)):
        now = at + timedelta(seconds=rng.choice([0, 0, 1, 5]))
        if kind == "reset":
            old_state, new_state = old.reset(old_state), new.reset(new_state)
            continue
        old_state, old_actions = old.step(old_state, _sample(old, kind, at, args), now, old_t)
        new_state, new_actions = new.step(new_state, _sample(new, kind, at, args), now, new_t)
        assert len(old_actions) == len(new_actions)
        assert all(_same_action(a, b) for a, b in zip(old_actions, new_actions, strict=True))
        opened += sum(isinstance(a, old.OpenDegraded) for a in old_actions)
        assert {r.value for r in old_state.active} == {r.value for r in new_state.active}
        assert (old_state.degraded, old_state.clear_since) == (
            new_state.degraded,
            new_state.clear_since,
        )
        assert _same_figures(old.measure(old_state, now, old_t), new.measure(new_state, now, new_t))
        assert new_state.bursts == tuple(
            new.Burst(b.at, b.sent, b.received, b.rtt_avg) for b in old_state.bursts
        )


def test_the_random_runs_reach_every_rule():
    """The property above is only worth something if the runs open P2s for each reason."""
    seen: set[str] = set()
    for seed in range(100):
        rng = random.Random(seed)
        t = _thresholds(old, random.Random(seed))
        state = old.QualityState()
        for kind, at, args in _samples(rng, 400):
            if kind == "reset":
                state = old.reset(state)
                continue
            state, actions = old.step(state, _sample(old, kind, at, args), at, t)
            for action in actions:
                if isinstance(action, old.OpenDegraded):
                    seen |= {r.value for r in action.reasons}
                else:
                    seen.add("clear")
    assert seen == {"loss", "latency", "errors", "flapping", "clear"}
