"""The availability state machine: every (state, event) pair, and properties."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nms.detector.availability import (
    TRANSITIONS,
    NtuState,
    Observed,
    OpenCase,
    RestoreCase,
    Rules,
    Status,
    Tick,
    WentStale,
    step,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RULES = Rules(down_after=timedelta(minutes=10), restore_after=2, stale_after=timedelta(minutes=2))
S = timedelta(seconds=1)


def run(events: Sequence[tuple[int, bool | None]], rules: Rules = RULES):
    """Feed (second offset, ok / None for a tick) events; return final state and actions."""
    state = NtuState.initial(T0)
    actions = []
    for offset, ok in events:
        now = T0 + offset * S
        event = Tick() if ok is None else Observed(at=now, ok=ok)
        state, acts = step(state, event, now, rules)
        actions += acts
    return state, actions


# One representative state per status, with and without an open case where that
# can happen, all observed recently.
def _states() -> list[NtuState]:
    recent = T0 - 30 * S
    return [
        NtuState(status=Status.UNKNOWN, since=T0 - 600 * S),
        NtuState(
            status=Status.UNKNOWN,
            since=T0 - 60 * S,
            outage_start=T0 - 3600 * S,
            case_open=True,
            last_observation_at=T0 - 200 * S,
        ),
        NtuState(
            status=Status.UP, since=recent, last_observation_at=recent, last_success_at=recent
        ),
        NtuState(
            status=Status.SUSPECT,
            since=T0 - 300 * S,
            outage_start=T0 - 300 * S,
            last_observation_at=recent,
        ),
        NtuState(
            status=Status.SUSPECT,
            since=T0 - 599 * S,
            outage_start=T0 - 599 * S,
            last_observation_at=recent,
        ),
        NtuState(
            status=Status.DOWN,
            since=T0 - 60 * S,
            outage_start=T0 - 900 * S,
            case_open=True,
            last_observation_at=recent,
        ),
        NtuState(
            status=Status.RECOVERING,
            since=recent,
            outage_start=T0 - 900 * S,
            first_good_at=recent,
            good_streak=1,
            case_open=True,
            last_observation_at=recent,
            last_success_at=recent,
        ),
    ]


EVENTS: dict[str, tuple[Observed | Tick, datetime]] = {
    "ok": (Observed(at=T0, ok=True), T0),
    "fail": (Observed(at=T0, ok=False), T0),
    "tick": (Tick(), T0),
    "tick-stale": (Tick(), T0 + 300 * S),
}


@pytest.mark.parametrize("state", _states(), ids=lambda s: f"{s.status}-case{s.case_open}")
@pytest.mark.parametrize("name", list(EVENTS))
def test_every_state_event_pair_follows_the_table(state: NtuState, name: str):
    event, now = EVENTS[name]
    new, actions = step(state, event, now, RULES)
    kind = name.split("-")[0]
    assert new.status in TRANSITIONS[(state.status, kind)]
    # Only the documented actions, at the documented transitions.
    for action in actions:
        if isinstance(action, OpenCase):
            assert (state.status, new.status) in {
                (Status.SUSPECT, Status.DOWN),
            }
            assert not state.case_open
        elif isinstance(action, RestoreCase):
            assert state.case_open and new.status == Status.UP
        else:
            assert isinstance(action, WentStale)
            assert new.status == Status.UNKNOWN
    # The case flag changes only through the actions.
    if new.case_open != state.case_open:
        assert any(isinstance(a, OpenCase | RestoreCase) for a in actions)


def test_table_covers_every_status_and_event_kind():
    assert {(s, k) for s in Status for k in ("ok", "fail", "tick")} == set(TRANSITIONS)


def test_down_after_ten_minutes_of_failure_opens_one_case_at_the_first_failure():
    events = [(t, True) for t in range(0, 60, 30)] + [(t, False) for t in range(60, 1300, 30)]
    state, actions = run(events)
    opens = [a for a in actions if isinstance(a, OpenCase)]
    assert len(opens) == 1
    assert opens[0].outage_start == T0 + 60 * S
    assert opens[0].detected_at == T0 + 660 * S
    assert state.status == Status.DOWN


def test_a_success_resets_the_clock():
    events = [(t, False) for t in range(0, 570, 30)] + [(570, True)]
    events += [(t, False) for t in range(600, 1170, 30)]
    _, actions = run(events)
    assert not any(isinstance(a, OpenCase) for a in actions)


def test_restore_needs_restore_after_good_cycles_and_ends_impact_at_the_first():
    events = [(t, False) for t in range(0, 630, 30)]
    events += [(630, True), (660, False), (690, True), (720, True)]
    state, actions = run(events)
    restores = [a for a in actions if isinstance(a, RestoreCase)]
    assert restores == [RestoreCase(restored_at=T0 + 690 * S)]
    assert sum(isinstance(a, OpenCase) for a in actions) == 1
    assert state.status == Status.UP and not state.case_open


def test_missing_data_makes_unknown_and_never_opens_a_case():
    events = [(0, True), (30, False), (60, False)] + [(t, None) for t in range(61, 2000, 60)]
    state, actions = run(events)
    assert state.status == Status.UNKNOWN
    assert not any(isinstance(a, OpenCase) for a in actions)
    assert any(isinstance(a, WentStale) for a in actions)


def test_a_gap_longer_than_stale_after_breaks_continuity_even_without_ticks():
    # Failures at 0 s and at 700 s with nothing in between: no continuous evidence.
    state, actions = run([(0, False), (700, False)])
    assert not any(isinstance(a, OpenCase) for a in actions)
    assert state.status == Status.SUSPECT and state.outage_start == T0 + 700 * S


def test_down_then_stale_keeps_the_case_and_its_start():
    events = [(t, False) for t in range(0, 630, 30)] + [(900, None)]
    state, _ = run(events)
    assert state.status == Status.UNKNOWN and state.case_open
    assert state.outage_start == T0
    state2, acts2 = step(state, Observed(at=T0 + 1000 * S, ok=False), T0 + 1000 * S, RULES)
    assert state2.status == Status.DOWN and acts2 == []


def test_late_observations_are_ignored():
    state, _ = run([(0, True), (30, True)])
    same, actions = step(state, Observed(at=T0, ok=False), T0 + 31 * S, RULES)
    assert same == state and actions == []


def test_restore_after_one_cycle():
    rules = replace(RULES, restore_after=1)
    events = [(t, False) for t in range(0, 630, 30)] + [(660, True)]
    state, actions = run(events, rules)
    assert actions[-1] == RestoreCase(restored_at=T0 + 660 * S)
    assert state.status == Status.UP


def test_rules_are_validated():
    with pytest.raises(ValueError, match="positive"):
        Rules(down_after=timedelta(0), restore_after=1, stale_after=S)
    with pytest.raises(ValueError, match="at least 1"):
        Rules(down_after=S, restore_after=0, stale_after=S)


# Observations every few seconds with random gaps (clock jumps), ok or not, with ticks.
event_lists = st.lists(
    st.tuples(st.integers(min_value=0, max_value=400), st.sampled_from([True, False, None])),
    max_size=120,
)


@settings(max_examples=400, deadline=None)
@given(
    steps=event_lists,
    down=st.integers(min_value=1, max_value=900),
    restore=st.integers(min_value=1, max_value=4),
    stale=st.integers(min_value=1, max_value=600),
)
def test_properties_over_random_sequences(steps, down, restore, stale):
    rules = Rules(down_after=down * S, restore_after=restore, stale_after=stale * S)
    state = NtuState.initial(T0)
    now = T0
    # The current run of failed observations, in arrival order: reset by a success
    # and by a data gap of stale_after (a tick or the next observation notices it).
    run: list[datetime] = []
    last_seen: datetime | None = None
    open_case = False
    for gap, ok in steps:
        now += gap * S
        if last_seen is not None and now - last_seen >= rules.stale_after:
            run = []
        if ok is None:
            state, actions = step(state, Tick(), now, rules)
        else:
            state, actions = step(state, Observed(at=now, ok=ok), now, rules)
            last_seen = now
            run = [] if ok else [*run, now]
        for action in actions:
            if isinstance(action, OpenCase):
                # Exactly one case per outage.
                assert not open_case
                open_case = True
                # It starts at the first failed probe after the last success or gap,
                # and only after down_after of continuous failure since then.
                assert run
                assert action.outage_start == run[0]
                assert action.detected_at - run[0] >= rules.down_after
                assert all(b - a < rules.stale_after for a, b in itertools.pairwise(run))
            elif isinstance(action, RestoreCase):
                assert open_case
                open_case = False
        assert state.case_open == open_case
        if state.outage_start is not None:
            assert state.outage_start <= now


def test_failure_inside_a_mute_window_opens_nothing_until_it_ends():
    window_end = T0 + 900 * S
    state = NtuState.initial(T0)
    actions = []
    for t in range(0, 900, 30):  # down for the whole 15 min window
        state, acts = step(
            state, Observed(at=T0 + t * S, ok=False, mute_until=window_end), T0 + t * S, RULES
        )
        actions += acts
    assert actions == []
    assert state.status == Status.SUSPECT
    # Still down after the window: the clock started at its end.
    for t in range(900, 1530, 30):
        state, acts = step(state, Observed(at=T0 + t * S, ok=False), T0 + t * S, RULES)
        actions += acts
    opens = [a for a in actions if isinstance(a, OpenCase)]
    last_muted = T0 + 870 * S
    assert opens == [OpenCase(outage_start=last_muted, detected_at=last_muted + 600 * S)]
    assert state.outage_start == T0  # the NTU's own record keeps the real first failure


def test_a_window_ended_early_does_not_delay_the_case():
    planned_end = T0 + 3600 * S
    state = NtuState.initial(T0)
    actions = []
    for t in range(0, 600, 30):  # muted for 10 minutes, then the window is ended early
        at = T0 + t * S
        state, acts = step(state, Observed(at=at, ok=False, mute_until=planned_end), at, RULES)
        actions += acts
    for t in range(600, 1230, 30):
        at = T0 + t * S
        state, acts = step(state, Observed(at=at, ok=False), at, RULES)
        actions += acts
    (opened,) = [a for a in actions if isinstance(a, OpenCase)]
    assert opened.outage_start == T0 + 570 * S
    assert opened.detected_at == T0 + 1170 * S  # not at the planned end + 10 min


def test_recovery_inside_a_mute_window_leaves_nothing():
    window_end = T0 + 900 * S
    state = NtuState.initial(T0)
    for t, ok in ((0, False), (30, False), (60, True)):
        state, acts = step(
            state, Observed(at=T0 + t * S, ok=ok, mute_until=window_end), T0 + t * S, RULES
        )
        assert acts == []
    assert state.status == Status.UP
    assert state.confirm_from is None
