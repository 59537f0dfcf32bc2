"""Upstream dependencies in the availability machine: every (state, event, upstream)
triple, the ancestor verdict table, and properties over parent/child runs."""

from __future__ import annotations

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
    Upstream,
    WentStale,
    step,
)
from nms.detector.topology import (
    Verdict,
    ancestor_verdict,
    ancestors_of,
    customer_link_key,
    node_down_key,
    upstream_verdict,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RULES = Rules(down_after=timedelta(minutes=10), restore_after=2, stale_after=timedelta(minutes=2))
S = timedelta(seconds=1)
RECENT = T0 - 30 * S


def _states() -> list[NtuState]:
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
            status=Status.UP, since=RECENT, last_observation_at=RECENT, last_success_at=RECENT
        ),
        NtuState(
            status=Status.SUSPECT,
            since=T0 - 300 * S,
            outage_start=T0 - 300 * S,
            last_observation_at=RECENT,
        ),
        NtuState(
            status=Status.SUSPECT,
            since=T0 - 900 * S,
            outage_start=T0 - 900 * S,
            last_observation_at=RECENT,
        ),
        NtuState(
            status=Status.DOWN,
            since=T0 - 60 * S,
            outage_start=T0 - 900 * S,
            case_open=True,
            last_observation_at=RECENT,
        ),
        NtuState(
            status=Status.RECOVERING,
            since=RECENT,
            outage_start=T0 - 900 * S,
            first_good_at=RECENT,
            good_streak=1,
            case_open=True,
            last_observation_at=RECENT,
            last_success_at=RECENT,
        ),
        NtuState(
            status=Status.UNREACHABLE,
            since=T0 - 900 * S,
            outage_start=T0 - 1800 * S,
            last_observation_at=RECENT,
        ),
    ]


def _events() -> dict[str, tuple[Observed | Tick, datetime]]:
    events: dict[str, tuple[Observed | Tick, datetime]] = {
        "tick": (Tick(), T0),
        "tick-stale": (Tick(), T0 + 300 * S),
    }
    for up in Upstream:
        for ok in (True, False):
            name = f"{'ok' if ok else 'fail'}-{up}"
            events[name] = (Observed(at=T0, ok=ok, upstream=up), T0)
            # Restored long ago / just now: the unreachable NTU's new clock.
            if up == Upstream.CLEAR:
                old = Observed(at=T0, ok=ok, upstream=up, upstream_since=T0 - 1200 * S)
                new = Observed(at=T0, ok=ok, upstream=up, upstream_since=T0 - 30 * S)
                events[f"{name}-restored-long-ago"] = (old, T0)
                events[f"{name}-restored-recently"] = (new, T0)
    return events


EVENTS = _events()


@pytest.mark.parametrize("state", _states(), ids=lambda s: f"{s.status}-case{s.case_open}")
@pytest.mark.parametrize("name", list(EVENTS))
def test_every_state_event_upstream_triple_follows_the_table(state: NtuState, name: str):
    event, now = EVENTS[name]
    new, actions = step(state, event, now, RULES)
    kind = name.split("-")[0]
    assert new.status in TRANSITIONS[(state.status, kind)]
    upstream = event.upstream if isinstance(event, Observed) else None
    for action in actions:
        if isinstance(action, OpenCase):
            assert upstream == Upstream.CLEAR  # never while an ancestor fails or is pending
            assert not state.case_open
            assert new.status == Status.DOWN
        elif isinstance(action, RestoreCase):
            assert state.case_open
            assert new.status == Status.UP
        else:
            assert isinstance(action, WentStale)
    if new.status == Status.UNREACHABLE:
        assert not new.case_open
        assert upstream == Upstream.DOWN or (state.status == Status.UNREACHABLE and kind == "tick")
    if state.case_open and kind == "fail":
        assert new.status == Status.DOWN  # an open case stays with its NTU
    if kind == "fail" and upstream == Upstream.DOWN and not state.case_open:
        assert new.status == Status.UNREACHABLE
        assert actions == [] or all(isinstance(a, WentStale) for a in actions)


def test_unreachable_restarts_its_clock_at_the_ancestors_restoration():
    state = _states()[-1]  # unreachable, failing for 30 minutes
    restored = T0 - 30 * S
    new, actions = step(state, Observed(at=T0, ok=False, upstream_since=restored), T0, RULES)
    assert new.status == Status.SUSPECT
    assert new.confirm_from == restored
    assert actions == []
    at = T0
    while at + 30 * S < restored + RULES.down_after:
        at += 30 * S
        new, actions = step(new, Observed(at=at, ok=False), at, RULES)
        assert (new.status, actions) == (Status.SUSPECT, [])
    later = restored + RULES.down_after
    new, actions = step(new, Observed(at=later, ok=False), later, RULES)
    assert new.status == Status.DOWN
    assert actions == [OpenCase(outage_start=restored, detected_at=later)]


def test_pending_holds_a_child_past_down_after_and_a_clear_verdict_releases_it():
    state = _states()[4]  # suspect for 15 minutes: past down_after
    held, actions = step(state, Observed(at=T0, ok=False, upstream=Upstream.PENDING), T0, RULES)
    assert (held.status, actions) == (Status.SUSPECT, [])
    at = T0 + 30 * S
    new, actions = step(held, Observed(at=at, ok=False), at, RULES)
    assert new.status == Status.DOWN
    assert actions == [OpenCase(outage_start=state.outage_start, detected_at=at)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("state", "verdict"),
    [
        (NtuState(status=Status.UNKNOWN, since=T0), Upstream.CLEAR),
        (
            NtuState(status=Status.UNKNOWN, since=T0, last_observation_at=T0, last_success_at=T0),
            Upstream.CLEAR,
        ),
        (NtuState(status=Status.UNKNOWN, since=T0, last_observation_at=T0), Upstream.PENDING),
        (NtuState(status=Status.UNKNOWN, since=T0, case_open=True), Upstream.DOWN),
        (NtuState(status=Status.UP, since=T0), Upstream.CLEAR),
        (NtuState(status=Status.SUSPECT, since=T0), Upstream.PENDING),
        (NtuState(status=Status.UNREACHABLE, since=T0), Upstream.PENDING),
        (NtuState(status=Status.DOWN, since=T0, case_open=True), Upstream.DOWN),
        (NtuState(status=Status.RECOVERING, since=T0, case_open=True), Upstream.DOWN),
    ],
    ids=lambda v: str(getattr(v, "status", v)),
)
def test_ancestor_verdict_table(state: NtuState, verdict: Upstream):
    assert ancestor_verdict(state) == verdict


def test_the_worst_ancestor_wins_and_the_nearest_down_one_blocks():
    up = NtuState(status=Status.UP, since=T0 - 60 * S)
    later_up = NtuState(status=Status.UP, since=T0 - 10 * S)
    down = NtuState(status=Status.DOWN, since=T0, case_open=True)
    suspect = NtuState(status=Status.SUSPECT, since=T0)
    assert upstream_verdict([]) == Verdict(Upstream.CLEAR)
    assert upstream_verdict([("a", up), ("b", later_up)]) == Verdict(
        Upstream.CLEAR, since=later_up.since
    )
    assert upstream_verdict([("a", suspect), ("b", up)]) == Verdict(Upstream.PENDING)
    assert upstream_verdict([("a", suspect), ("b", down), ("c", down)]) == Verdict(
        Upstream.DOWN, blocker="b"
    )
    assert ancestors_of("n", {"n": "agg", "agg": "pop", "pop": None}) == ["agg", "pop"]
    assert node_down_key("pop") == "node:pop:down"
    assert customer_link_key("pop", "acme") == "node:pop:down:customer:acme"


# -- properties: a parent and a child run side by side, parent first each cycle -----

cycle = st.tuples(st.booleans(), st.booleans())  # (parent ok, child ok)


def _run(cycles: list[tuple[bool, bool]], step_s: int = 30):
    parent = NtuState.initial(T0)
    child = NtuState.initial(T0)
    log: list[tuple[str, object, NtuState, NtuState]] = []
    for i, (parent_ok, child_ok) in enumerate(cycles):
        at = T0 + i * step_s * S
        parent, acts = step(parent, Observed(at=at, ok=parent_ok), at, RULES)
        log += [("parent", a, parent, child) for a in acts]
        verdict = upstream_verdict([("p", parent)])
        event = Observed(
            at=at, ok=child_ok, upstream=verdict.upstream, upstream_since=verdict.since
        )
        before = parent
        child, acts = step(child, event, at, RULES)
        log += [("child", a, before, child) for a in acts]
    return parent, child, log


@settings(max_examples=300, deadline=None)
@given(st.lists(cycle, max_size=120))
def test_a_child_never_opens_while_its_ancestor_fails_or_is_pending(cycles):
    _, _, log = _run(cycles)
    for who, action, parent, _ in log:
        if who == "child" and isinstance(action, OpenCase):
            assert ancestor_verdict(parent) == Upstream.CLEAR


@settings(max_examples=300, deadline=None)
@given(st.lists(cycle, max_size=120))
def test_exactly_one_parent_case_per_parent_outage(cycles):
    _, _, log = _run(cycles)
    kinds = [type(a) for who, a, _, _ in log if who == "parent" and not isinstance(a, WentStale)]
    # Open and restore alternate, starting with an open: one case per outage.
    for i, kind in enumerate(kinds):
        assert kind is (OpenCase if i % 2 == 0 else RestoreCase)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.booleans(), max_size=120), st.integers(min_value=1, max_value=60))
def test_children_failing_in_the_same_cycle_as_their_parent_open_nothing(pattern, step_s):
    # Whatever the parent does, a child that fails exactly when it does (and only
    # then) never opens a case of its own.
    _, _, log = _run([(ok, ok) for ok in pattern], step_s)
    assert not any(who == "child" and isinstance(a, OpenCase) for who, a, _, _ in log)


def test_inventory_nodes_unknown_parents_and_cycles_are_reported_with_line_and_field():
    from nms.errors import InventoryError
    from nms.inventory.loader import parse_inventory
    from nms.inventory.model import NodeSpec

    text = """\
customers:
  - {id: a, name: A}
nodes:
  - {id: pop, kind: pop, address: 192.0.2.1, parent: agg}
  - {id: agg, kind: aggregation, address: 192.0.2.2, parent: pop}
  - {id: x, kind: bogus, address: 192.0.2.3, customer: a}
ntus:
  - {id: n1, customer: a, address: 192.0.2.10, parent: agg}
  - {id: n2, customer: a, address: 192.0.2.11, parent: nope}
  - {id: pop, customer: a, address: 192.0.2.12}
"""
    with pytest.raises(InventoryError) as caught:
        parse_inventory(text, source="inv.yaml", fmt="yaml")
    problems = caught.value.problems
    assert "inv.yaml:4: nodes[0].parent: cycle pop -> agg -> pop" in problems
    assert "inv.yaml:6: nodes[2].customer (id x): nodes belong to no customer" in problems
    assert any(p.startswith("inv.yaml:6: nodes[2].kind (id x):") for p in problems)
    assert "inv.yaml:9: ntus[1].parent: unknown parent 'nope'" in problems
    assert any(p.startswith("inv.yaml:10: ntus[2].id: duplicate id 'pop'") for p in problems)
    good = parse_inventory(
        text.replace(", parent: agg}", "}", 1)
        .replace("  - {id: x, kind: bogus, address: 192.0.2.3, customer: a}\n", "")
        .replace("parent: nope", "parent: pop")
        .replace("  - {id: pop, customer: a, address: 192.0.2.12}\n", ""),
        source="inv.yaml",
        fmt="yaml",
    )
    assert [n.id for n in good.nodes] == ["pop", "agg"]
    assert all(isinstance(n, NodeSpec) for n in good.nodes)
    assert good.parents() == {"pop": None, "agg": "pop", "n1": "agg", "n2": "pop"}
