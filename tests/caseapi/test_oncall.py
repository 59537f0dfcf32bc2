"""On-call rotations, the escalation matrix, the alert machine and the section parser (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caseapi.oncall.alerts import Ack, AlertState, Event, Exhausted, Raise, Send, Tick, step
from caseapi.oncall.matrix import LevelContacts, MatrixError, Tier, tier_for
from caseapi.oncall.rotation import Override, Rotation, RotationError
from caseapi.oncall.spec import TeamFacts, parse_sections

ROME = ZoneInfo("Europe/Rome")


def _weekly(**kw: object) -> Rotation:
    args: dict[str, object] = {
        "team": "l1-noc",
        "kind": "weekly",
        "tz": ROME,
        "handoff": time(9, 0),
        "start": date(2026, 11, 2),  # a Monday
        "order": ("alice", "bob", "carol"),
        "ack_within": timedelta(minutes=10),
    }
    args.update(kw)
    return Rotation(**args)  # type: ignore[arg-type]


def _rome(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ROME).astimezone(UTC)


def test_weekly_rotation_hands_off_at_the_local_time() -> None:
    r = _weekly()
    assert r.on_call(_rome(2026, 11, 2, 9, 0)) == "alice"
    assert r.on_call(_rome(2026, 11, 9, 8, 59)) == "alice"
    assert r.on_call(_rome(2026, 11, 9, 9, 0)) == "bob"
    assert r.on_call(_rome(2026, 11, 16, 9, 0)) == "carol"
    assert r.on_call(_rome(2026, 11, 23, 9, 0)) == "alice"
    # Before the start the rotation runs backwards: the week before is carol's.
    assert r.on_call(_rome(2026, 11, 2, 8, 59)) == "carol"


def test_daily_rotation() -> None:
    r = _weekly(kind="daily", handoff=time(18, 0))
    assert r.on_call(_rome(2026, 11, 2, 18, 0)) == "alice"
    assert r.on_call(_rome(2026, 11, 3, 17, 59)) == "alice"
    assert r.on_call(_rome(2026, 11, 3, 18, 0)) == "bob"


def test_dst_weeks_keep_the_wall_clock_handoff() -> None:
    # Europe/Rome springs forward on 2027-03-28 and falls back on 2026-10-25.
    r = _weekly(start=date(2027, 3, 22), handoff=time(9, 0), order=("alice", "bob"))
    start, end = r.shift_bounds(0)
    assert end - start == timedelta(hours=167)
    assert end.astimezone(ROME).time() == time(9, 0)
    r2 = _weekly(start=date(2026, 10, 19), order=("alice", "bob"))
    start, end = r2.shift_bounds(0)
    assert end - start == timedelta(hours=169)
    assert r2.on_call(end - timedelta(seconds=1)) == "alice"
    assert r2.on_call(end) == "bob"


def test_handoff_in_the_skipped_hour_happens_once() -> None:
    r = _weekly(kind="daily", handoff=time(2, 30), start=date(2027, 3, 27), order=("a", "b"))
    before, after = r.shift_bounds(0)
    assert after > before
    assert r.on_call(after - timedelta(seconds=1)) == "a"
    assert r.on_call(after) == "b"


def test_overrides_win_and_may_not_overlap() -> None:
    override = Override("carol", datetime(2026, 12, 24, 18), datetime(2026, 12, 27, 9))
    r = _weekly(overrides=(override,))
    at = _rome(2026, 12, 25, 12, 0)
    assert r.scheduled(at) == "bob"  # the week of 2026-12-21
    assert r.on_call(at) == "carol"
    assert r.notify_order(at) == ("carol", "bob", "alice")
    assert r.on_call(_rome(2026, 12, 27, 9, 0)) == "bob"
    clash = Override("alice", datetime(2026, 12, 26, 0), datetime(2026, 12, 28, 0))
    with pytest.raises(RotationError, match=r"overrides: .* overlap"):
        _weekly(overrides=(override, clash))
    with pytest.raises(RotationError, match="order: empty"):
        _weekly(order=())


@settings(max_examples=200, deadline=None)
@given(
    order=st.lists(st.sampled_from("abcdefg"), min_size=1, max_size=7, unique=True),
    kind=st.sampled_from(["weekly", "daily"]),
    hour=st.integers(0, 23),
    offset=st.integers(-400 * 86400, 800 * 86400),
)
def test_exactly_one_person_and_a_full_notify_order(
    order: list[str], kind: str, hour: int, offset: int
) -> None:
    r = _weekly(order=tuple(order), kind=kind, handoff=time(hour, 0))
    at = _rome(2026, 11, 2, 0, 0) + timedelta(seconds=offset)
    person = r.on_call(at)
    assert person in order
    sequence = r.notify_order(at)
    assert sequence[0] == person
    assert sorted(sequence) == sorted(order)
    start, end = r.shift_bounds(r.shift_index(at))
    assert start <= at < end
    # Round robin: the next shift is the next person.
    assert r.on_call(end) == order[(order.index(person) + 1) % len(order)]


def _tier(**kw: object) -> Tier:
    args: dict[str, object] = {
        "name": "gold",
        "levels": {
            "L1": LevelContacts("l1-noc"),
            "L2": LevelContacts("l2-access", contacts=("carol",)),
            "L3": LevelContacts("l3-core", contacts=("dave",), management=("erin", "dave")),
        },
        "notify_after": {"L2": timedelta(hours=1), "L3": timedelta(hours=4)},
    }
    args.update(kw)
    return Tier(**args)  # type: ignore[arg-type]


def test_matrix_schedule_recipients_and_customer_view() -> None:
    tier = _tier()
    opened = datetime(2026, 12, 1, 8, tzinfo=UTC)
    assert tier.level_due(opened, opened + timedelta(minutes=59)) == "L1"
    assert tier.level_due(opened, opened + timedelta(hours=1)) == "L2"
    assert tier.level_due(opened, opened + timedelta(hours=5)) == "L3"
    assert tier.next_escalation(opened, "L1") == ("L2", opened + timedelta(hours=1))
    assert tier.next_escalation(opened, "L3") is None
    assert tier.next_level("L1") == "L2"
    assert tier.recipients("L3") == ("dave", "erin")
    assert tier.customer_view("L2", "Carol Bianchi") == {"level": "L2"}
    shown = _tier(customer_sees="level_and_contact")
    assert shown.customer_view("L2", "Carol Bianchi") == {"level": "L2", "contact": "Carol Bianchi"}
    assert tier_for({"standard": tier}, "platinum") is tier
    assert tier_for({}, None) is None
    with pytest.raises(MatrixError, match="notify_after: a higher level"):
        _tier(notify_after={"L2": timedelta(hours=5), "L3": timedelta(hours=4)})
    with pytest.raises(MatrixError, match="levels: L1 missing"):
        _tier(levels={"L2": LevelContacts("x")}, notify_after={})


def test_alert_machine_walks_the_order_until_acknowledged() -> None:
    now = datetime(2026, 12, 1, 8, tzinfo=UTC)
    state = AlertState(("alice", "bob"), timedelta(minutes=10))
    state, actions = step(state, Raise(), now)
    assert actions == (Send("alice", 0),)
    assert step(state, Raise(), now) == (state, ())
    assert step(state, Tick(), now + timedelta(minutes=9)) == (state, ())
    state, actions = step(state, Tick(), now + timedelta(minutes=10))
    assert actions == (Send("bob", 1),)
    assert state.next_at == now + timedelta(minutes=20)
    acked, actions = step(state, Ack("bob"), now + timedelta(minutes=11))
    assert (acked.status, acked.acked_by, actions) == ("acked", "bob", ())
    assert step(acked, Tick(), now + timedelta(hours=1)) == (acked, ())
    gone, actions = step(state, Tick(), now + timedelta(minutes=20))
    assert (gone.status, actions) == ("exhausted", (Exhausted(),))
    assert step(gone, Tick(), now + timedelta(hours=9)) == (gone, ())


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["tick", "ack", "raise"]), max_size=12), st.integers(1, 4))
def test_alert_machine_sends_each_step_once(events: list[str], people: int) -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    state = AlertState(tuple(f"m{i}" for i in range(people)), timedelta(minutes=5))
    sent: list[int] = []
    for index, name in enumerate(["raise", *events]):
        now += timedelta(minutes=3 * index)
        events_by_name: dict[str, Event] = {"tick": Tick(), "ack": Ack("m0"), "raise": Raise()}
        event = events_by_name[name]
        state, actions = step(state, event, now)
        sent += [a.step for a in actions if isinstance(a, Send)]
    assert sent == list(range(len(sent)))
    assert len(sent) <= people


TEAMS = {
    "l1-noc": TeamFacts("Europe/Rome", ("alice", "bob")),
    "l2-access": TeamFacts("Europe/Rome", ("carol",)),
    "mars": TeamFacts("Mars/Olympus", ("bob",)),
}
MEMBERS = ("alice", "bob", "carol")
GOOD: dict[str, list[dict[str, Any]]] = {
    "oncall": [
        {
            "team": "l1-noc",
            "rotation": "weekly",
            "handoff": "mon 09:00",
            "start": date(2026, 11, 2),
            "order": ["alice", "bob"],
            "overrides": [{"member": "bob", "from": "2026-12-24T18:00", "to": "2026-12-27T09:00"}],
            "ack_within": "10m",
        }
    ],
    "escalation": [
        {
            "tier": "gold",
            "levels": {
                "L1": {"team": "l1-noc"},
                "L2": {"team": "l2-access", "contacts": ["carol"]},
            },
            "notify_after": {"L2": "1h"},
            "customer_sees": "level",
        }
    ],
}


def test_sections_parse() -> None:
    problems, model = parse_sections(GOOD, TEAMS, MEMBERS, "org.yaml")
    assert problems == []
    assert model.rotations["l1-noc"].on_call(_rome(2026, 12, 25, 0, 0)) == "bob"
    assert model.tiers["gold"].recipients("L2") == ("carol",)


@pytest.mark.parametrize(
    ("oncall", "expected"),
    [
        ({"team": "nope"}, "oncall[0].team: nope: no such team"),
        ({"team": "mars"}, "oncall[0].team: team mars: unknown time zone 'Mars/Olympus'"),
        ({"handoff": "monday 9"}, "oncall[0].handoff: 'monday 9': expected '<mon..sun> HH:MM'"),
        ({"handoff": "mon 25:00"}, "oncall[0].handoff: 'mon 25:00': time out of range"),
        (
            {"start": date(2026, 11, 3)},
            "oncall[0].start: 2026-11-03 is a tue, the handoff is on mon",
        ),
        ({"order": ["alice", "zed"]}, "oncall[0].order: zed: not a member of team l1-noc"),
        ({"ack_within": "10"}, "oncall[0].ack_within: '10' is not a duration"),
        ({"ack_within": "0s"}, "oncall[0].ack_within: must be greater than zero"),
        ({"rotation": "monthly"}, "oncall[0].rotation: 'monthly': expected weekly or daily"),
        ({"shift": 1}, "oncall[0].shift: unknown key"),
        (
            {
                "overrides": [
                    {"member": "bob", "from": "2026-12-24T18:00", "to": "2026-12-27T09:00"},
                    {"member": "alice", "from": "2026-12-26T18:00", "to": "2026-12-28T09:00"},
                ]
            },
            "oncall[0].overrides: bob 2026-12-24T18:00..2026-12-27T09:00 and alice",
        ),
        (
            {
                "overrides": [
                    {"member": "bob", "from": "2026-12-24T18:00", "to": "2026-12-24T08:00"}
                ]
            },
            "oncall[0].overrides[0].to: not after 'from'",
        ),
        (
            {"overrides": [{"member": "bob", "from": "Christmas", "to": "2026-12-24T08:00"}]},
            "oncall[0].overrides[0].from: 'Christmas': expected a local YYYY-MM-DDTHH:MM",
        ),
    ],
)
def test_bad_oncall_names_the_field(oncall: dict[str, object], expected: str) -> None:
    doc = {"oncall": [{**GOOD["oncall"][0], **oncall}]}
    problems, model = parse_sections(doc, TEAMS, MEMBERS, "org.yaml")
    assert any(expected in p for p in problems), problems
    assert all(p.startswith("org.yaml") for p in problems)
    assert not model.rotations


@pytest.mark.parametrize(
    ("tier", "expected"),
    [
        ({"levels": {"L1": {"team": "nope"}}}, "escalation[0].levels.L1.team: nope: no such team"),
        (
            {"levels": {"L1": {"team": "l1-noc", "contacts": ["zed"]}}, "notify_after": {}},
            "escalation[0].levels.L1.contacts: zed: no such member",
        ),
        ({"levels": {"L4": {"team": "l1-noc"}}}, "escalation[0].levels.L4: unknown level"),
        (
            {"notify_after": {"L2": "soon"}},
            "escalation[0].notify_after.L2: 'soon' is not a duration",
        ),
        ({"customer_sees": "all"}, "escalation[0].customer_sees: 'all': expected level or"),
        (
            {"levels": {"L2": {"team": "l2-access"}}},
            "escalation[0].levels: L1 missing",
        ),
    ],
)
def test_bad_escalation_names_the_field(tier: dict[str, object], expected: str) -> None:
    doc = {"escalation": [{**GOOD["escalation"][0], **tier}]}
    problems, model = parse_sections(doc, TEAMS, MEMBERS, "org.yaml")
    assert any(expected in p for p in problems), problems
    assert not model.tiers


def test_the_example_file_sections_are_valid() -> None:
    from pathlib import Path

    import yaml

    doc = yaml.safe_load(Path("examples/organisation.yaml").read_text(encoding="utf-8"))
    teams = {t["id"]: TeamFacts(t["timezone"], tuple(t["members"])) for t in doc["teams"]}
    members = tuple(m["id"] for m in doc["members"])
    problems, model = parse_sections(doc, teams, members, "examples/organisation.yaml")
    assert problems == []
    assert set(model.rotations) == {"l1-noc", "l2-access"}
    assert model.tiers["gold"].recipients("L3") == ("dave", "erin")
