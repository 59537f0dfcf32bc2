"""ICMP + SNMP fusion: every input combination of each rule, and properties."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nms.detector.fusion import Fused, Rules, Signals, SnmpView, on_ping, on_snmp, ticks
from nms.detector.signals import wan_service_down
from probes.observation import PingResult, SnmpResult

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)
RULES = Rules(snmp_max_age=timedelta(minutes=3))
ADDRESS = ipaddress.ip_address("192.0.2.1")

UP, DOWN, LOWER_DOWN, TESTING, DORMANT = 1, 2, 7, 3, 5


def ping(at: int, *, ok: bool, sent: int = 5) -> PingResult:
    received = sent if ok else 0
    return PingResult(
        key="n1",
        address=ADDRESS,
        started_at=T0 + at * S,
        sent=sent,
        received=received,
        rtts=(0.001,) * received,
    )


def poll(
    at: int,
    *,
    reachable: bool = True,
    oper: int | None = UP,
    admin: int | None = UP,
    uptime: int | None = None,
    octets: int = 0,
    errors: int = 0,
    if_index: int = 3,
) -> SnmpResult:
    if not reachable:
        return SnmpResult(key="n1", address=ADDRESS, started_at=T0 + at * S, reachable=False)
    return SnmpResult(
        key="n1",
        address=ADDRESS,
        started_at=T0 + at * S,
        reachable=True,
        sys_uptime=100_000 + at * 100 if uptime is None else uptime,
        if_index=if_index,
        if_oper_status=oper,
        if_admin_status=admin,
        in_octets=octets,
        out_octets=octets,
        counters_64bit=True,
        in_errors=errors,
        out_errors=0,
        in_discards=0,
    )


def filtered(streak: int = 2, last_fail: int = -30) -> Signals:
    return Signals(
        view=SnmpView(icmp_filtered=True),
        icmp_fail_streak=streak,
        last_icmp_fail_at=T0 + last_fail * S,
    )


# -- ICMP -----------------------------------------------------------------------------

# What the last SNMP poll said, relative to a ping at t=0.
LAST_SNMP = {
    "none": None,
    "wan up": poll(-30),
    "wan down": poll(-30, oper=DOWN),
    "wan lowerLayerDown": poll(-30, oper=LOWER_DOWN),
    "wan testing": poll(-30, oper=TESTING),
    "wan dormant": poll(-30, oper=DORMANT),
    "wan down, admin down": poll(-30, oper=DOWN, admin=DOWN),
    "wan down, too old": poll(-181, oper=DOWN),
    "wan down, at max age": poll(-180, oper=DOWN),
    "wan down, newer than the ping": poll(10, oper=DOWN),
    "agent silent": poll(-30, reachable=False),
}
SERVICE_DOWN = {
    "wan down",
    "wan lowerLayerDown",
    "wan down, at max age",
    "wan down, newer than the ping",
}


@pytest.mark.parametrize("last", sorted(LAST_SNMP))
@pytest.mark.parametrize("was_filtered", [False, True])
@pytest.mark.parametrize("answered", [True, False])
def test_ping_verdict_table(last: str, was_filtered: bool, answered: bool):
    before = Signals(
        view=SnmpView(icmp_filtered=was_filtered),
        last_snmp=LAST_SNMP[last],
        icmp_fail_streak=3 if was_filtered else 0,
    )
    fused = on_ping(before, ping(0, ok=answered), rules=RULES)
    if answered:
        # An answer is up unless a fresh SNMP poll says the WAN service is down.
        assert fused.ok is (last not in SERVICE_DOWN)
        assert not fused.signals.view.icmp_filtered
        assert fused.icmp_filtered is (False if was_filtered else None)
        assert fused.signals.icmp_fail_streak == 0
        assert fused.burst
    elif was_filtered:
        # ICMP filtered: a failed burst is no verdict, SNMP alone decides.
        assert fused.ok is None
        assert fused.signals.view.icmp_filtered
        assert not fused.burst
        assert fused.signals.icmp_fail_streak == 4
    else:
        assert fused.ok is False
        assert fused.burst
        assert fused.signals.icmp_fail_streak == 1
        assert fused.signals.last_icmp_fail_at == T0
    assert fused.signals.last_snmp is LAST_SNMP[last]  # a ping never changes SNMP's word
    assert fused.reboot is None and fused.rates is None and not fused.wan_admin_down


def test_a_burst_that_could_not_be_sent_is_no_quality_sample():
    fused = on_ping(Signals(), ping(0, ok=False, sent=0), rules=RULES)
    assert fused.ok is False
    assert not fused.burst


def test_snmp_max_age_is_a_rule():
    last = poll(-60, oper=DOWN)
    short = Rules(snmp_max_age=timedelta(seconds=59))
    assert on_ping(Signals(last_snmp=last), ping(0, ok=True), rules=RULES).ok is False
    assert on_ping(Signals(last_snmp=last), ping(0, ok=True), rules=short).ok is True


@pytest.mark.parametrize(
    "kwargs", [{"snmp_max_age": timedelta(0)}, {"snmp_max_age": -S}, {"filtered_after": 0}]
)
def test_rules_are_validated(kwargs: dict[str, object]):
    with pytest.raises(ValueError, match="must be"):
        Rules(**{"snmp_max_age": timedelta(minutes=3), **kwargs})  # type: ignore[arg-type]


# -- SNMP -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("was_filtered", "icmp_probed", "ok"),
    [
        (False, True, None),  # SNMP filtered or a slow agent: ICMP decides
        (True, True, False),  # ICMP filtered: SNMP was the only signal left
        (False, False, False),  # not probed by ICMP: SNMP alone decides
        (True, False, False),
    ],
)
def test_a_silent_agent(was_filtered: bool, icmp_probed: bool, ok: bool | None):
    before = Signals(view=SnmpView(icmp_filtered=was_filtered, wan_oper_status=UP))
    fused = on_snmp(
        before, poll(0, reachable=False), rules=RULES, icmp_probed=icmp_probed,
        last_observation_at=None,
    )  # fmt: skip
    assert fused.ok is ok
    assert fused.signals.view == before.view  # what it said last stays on record
    assert fused.signals.last_snmp == poll(0, reachable=False)
    assert fused.icmp_filtered is None and fused.reboot is None and fused.rates is None


@pytest.mark.parametrize(
    ("oper", "admin", "ok"),
    [
        (UP, UP, True),
        (DOWN, UP, False),  # management plane answers, the customer's service does not
        (LOWER_DOWN, UP, False),
        (6, UP, False),  # notPresent
        (TESTING, UP, True),
        (4, UP, True),  # unknown
        (DORMANT, UP, True),
        (DOWN, DOWN, True),  # shut on purpose: no customer outage
        (DOWN, TESTING, True),
        (None, None, True),  # WAN interface not resolved: the agent answered
    ],
)
@pytest.mark.parametrize("icmp_probed", [True, False])
def test_wan_interface_table(oper: int | None, admin: int | None, ok: bool, icmp_probed: bool):
    fused = on_snmp(
        Signals(), poll(0, oper=oper, admin=admin), rules=RULES, icmp_probed=icmp_probed,
        last_observation_at=None,
    )  # fmt: skip
    assert fused.ok is ok
    view = fused.signals.view
    assert (view.wan_if_index, view.wan_oper_status, view.wan_admin_status) == (3, oper, admin)


@pytest.mark.parametrize(
    ("previous_admin", "admin", "noticed"),
    [
        (None, DOWN, False),  # the first poll: nothing to compare (no transition seen)
        (UP, DOWN, True),
        (DOWN, DOWN, False),  # noticed once
        (DOWN, UP, False),
        (UP, UP, False),
        ("silent", DOWN, True),
    ],
)
def test_admin_down_is_noticed_once(previous_admin: int | str | None, admin: int, noticed: bool):
    if previous_admin is None:
        previous = None
    elif previous_admin == "silent":
        previous = poll(-60, reachable=False)
    else:
        assert isinstance(previous_admin, int)
        previous = poll(-60, admin=previous_admin)
    fused = on_snmp(
        Signals(last_snmp=previous), poll(0, oper=DOWN, admin=admin), rules=RULES,
        icmp_probed=True, last_observation_at=None,
    )  # fmt: skip
    assert fused.wan_admin_down is noticed


@pytest.mark.parametrize(
    ("streak", "last_fail", "poll_at", "flagged"),
    [
        (2, -10, 0, True),
        (5, -10, 0, True),
        (2, 0, 0, True),  # an SNMP answer at the same time as the failed burst
        (1, -10, 0, False),  # one lost burst is not a pattern
        (0, None, 0, False),
        (2, 10, 0, False),  # the poll predates the failures: it says nothing about them
    ],
)
def test_icmp_filtered_needs_a_streak_and_a_later_snmp_answer(
    streak: int, last_fail: int | None, poll_at: int, flagged: bool
):
    before = Signals(
        icmp_fail_streak=streak,
        last_icmp_fail_at=None if last_fail is None else T0 + last_fail * S,
    )
    fused = on_snmp(before, poll(poll_at), rules=RULES, icmp_probed=True, last_observation_at=None)
    assert fused.signals.view.icmp_filtered is flagged
    assert fused.icmp_filtered is (True if flagged else None)
    assert fused.ok is True


def test_icmp_filtered_is_reported_once():
    fused = on_snmp(filtered(), poll(0), rules=RULES, icmp_probed=True, last_observation_at=None)
    assert fused.signals.view.icmp_filtered
    assert fused.icmp_filtered is None


def test_filtered_after_is_a_rule():
    before = Signals(icmp_fail_streak=2, last_icmp_fail_at=T0 - 10 * S)
    strict = Rules(snmp_max_age=timedelta(minutes=3), filtered_after=3)
    fused = on_snmp(before, poll(0), rules=strict, icmp_probed=True, last_observation_at=None)
    assert not fused.signals.view.icmp_filtered


def _after(previous_uptime: int, uptime: int, *, gap: int = 60, base: str = "poll") -> Fused:
    """A poll with ``uptime`` ``gap`` s after one with ``previous_uptime``."""
    view = SnmpView(sys_uptime=previous_uptime)
    if base == "poll":
        signals = Signals(view=view, last_snmp=poll(-gap, uptime=previous_uptime))
        last_observation_at = None
    else:  # a restarted detector: the saved view, no previous poll in memory
        signals, last_observation_at = Signals(view=view), T0 - gap * S
    return on_snmp(
        signals, poll(0, uptime=uptime), rules=RULES, icmp_probed=True,
        last_observation_at=last_observation_at,
    )  # fmt: skip


@pytest.mark.parametrize("base", ["poll", "observation"])
@pytest.mark.parametrize(
    ("before", "after", "reboot"),
    [
        (100_000, 106_000, False),  # 60 s later, as expected
        (100_000, 100_000, False),
        (100_000, 500, True),  # restarted 5 s ago
        (2**32 - 1000, 5000, False),  # a 32-bit TimeTicks wrap, not a reboot
        (2**32 - 1000, 900_000, True),  # past the wrap, far from the prediction
    ],
)
def test_reboot_table(before: int, after: int, reboot: bool, base: str):
    fused = _after(before, after, base=base)
    assert (fused.reboot is not None) is reboot
    view = fused.signals.view
    assert view.sys_uptime == after
    assert view.reboots == (1 if reboot else 0)
    if reboot:
        assert fused.reboot is not None
        assert fused.reboot.at == T0 - ticks(after)
        assert (fused.reboot.uptime_before, fused.reboot.uptime_after) == (before, after)
        assert view.last_reboot_at == fused.reboot.at
    assert fused.ok is True  # a reboot is recorded, it opens nothing


def test_no_uptime_keeps_the_last_one_and_sees_no_reboot():
    signals = Signals(view=SnmpView(sys_uptime=100_000, reboots=2))
    result = replace(poll(0), sys_uptime=None)
    fused = on_snmp(signals, result, rules=RULES, icmp_probed=True, last_observation_at=None)
    assert fused.reboot is None
    assert fused.signals.view.sys_uptime == 100_000
    assert fused.signals.view.reboots == 2


def test_rates_between_two_polls_and_kept_when_incomparable():
    first = on_snmp(
        Signals(), poll(0, octets=0), rules=RULES, icmp_probed=True, last_observation_at=None
    )
    assert first.rates is None and first.signals.view.in_bps is None
    second = on_snmp(
        first.signals, poll(60, octets=750_000, errors=600), rules=RULES, icmp_probed=True,
        last_observation_at=None,
    )  # fmt: skip
    assert second.rates is not None
    assert second.signals.view.in_bps == 100_000.0
    assert second.signals.view.error_rate == 10.0
    # Another interface: no rate, the last figures stay.
    third = on_snmp(
        second.signals, poll(120, octets=10**9, if_index=4), rules=RULES, icmp_probed=True,
        last_observation_at=None,
    )  # fmt: skip
    assert third.rates is None
    assert third.signals.view.in_bps == 100_000.0
    # After a silent poll there is nothing to compare with either.
    silent = on_snmp(
        third.signals, poll(180, reachable=False), rules=RULES, icmp_probed=True,
        last_observation_at=None,
    )  # fmt: skip
    back = on_snmp(
        silent.signals, poll(240), rules=RULES, icmp_probed=True, last_observation_at=None
    )
    assert back.rates is None


# -- properties -----------------------------------------------------------------------

# (seconds since the previous result, ping answered) or (seconds, agent answered,
# ifOperStatus, ifAdminStatus)
_ping = st.tuples(st.integers(0, 300), st.booleans())
_poll = st.tuples(
    st.integers(0, 300),
    st.booleans(),
    st.sampled_from([UP, DOWN, TESTING, 4, DORMANT, 6, LOWER_DOWN]),
    st.sampled_from([UP, DOWN, TESTING]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_ping, _poll), max_size=40), st.booleans())
def test_fusion_properties_over_any_sequence(
    steps: list[tuple[int, bool] | tuple[int, bool, int, int]], icmp_probed: bool
):
    signals = Signals()
    t = 0
    for item in steps:
        t += item[0]
        before = signals
        fused: Fused
        if len(item) == 2:
            result = ping(t, ok=item[1])
            fused = on_ping(signals, result, rules=RULES)
            if result.reachable:
                # An answer always clears the flag, and is a failure only by WAN state.
                assert not fused.signals.view.icmp_filtered
                last = before.last_snmp
                assert fused.ok is not (
                    last is not None
                    and result.started_at - last.started_at <= RULES.snmp_max_age
                    and wan_service_down(last)
                )
            else:
                assert fused.ok in (False, None)
                assert (fused.ok is None) is before.view.icmp_filtered
            assert fused.signals.view.reboots == before.view.reboots
        else:
            _, reachable, oper, admin = item
            polled = poll(t, reachable=reachable, oper=oper, admin=admin)
            fused = on_snmp(
                signals, polled, rules=RULES, icmp_probed=icmp_probed, last_observation_at=None
            )
            assert fused.signals.last_snmp is polled
            if not polled.reachable:
                assert fused.ok is (False if before.view.icmp_filtered or not icmp_probed else None)
                assert fused.signals.view == before.view
            else:
                assert fused.ok is not wan_service_down(polled)
                if fused.icmp_filtered:
                    # Only after enough failed bursts, none of them answered since.
                    assert before.icmp_fail_streak >= RULES.filtered_after
                    assert not before.view.icmp_filtered
            assert fused.signals.icmp_fail_streak == before.icmp_fail_streak
        # The change fact matches the view, and reboots only count up.
        if fused.icmp_filtered is not None:
            assert fused.signals.view.icmp_filtered is fused.icmp_filtered
            assert before.view.icmp_filtered is not fused.icmp_filtered
        else:
            assert fused.signals.view.icmp_filtered is before.view.icmp_filtered
        assert fused.signals.view.reboots >= before.view.reboots
        signals = fused.signals
