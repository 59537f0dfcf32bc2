"""What the detector writes after a batch: ``must_save``, ``must_report``, ``status_due``.

``status_due`` decides the common case (an ``up`` NTU whose figures alone moved) from
the tracked entry without building its public status; it must say what
``must_report`` says of that status, for any pair of states.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from operator import attrgetter

from hypothesis import given, settings
from hypothesis import strategies as st

from nms.detector import degradation as quality
from nms.detector.availability import NtuState, Status
from nms.detector.fusion import Signals, SnmpView
from nms.detector.store import LastProbe, StoredState, must_save
from nms.detector.tracked import _SETTLED, Degraded, Outage, Tracked, must_report, status_due
from nms.inventory.loader import parse_inventory

SPEC = parse_inventory(
    "customers: [{id: c, name: C}]\nntus: [{id: n1, customer: c, address: 192.0.2.1}]",
    source="inv.yaml",
    fmt="yaml",
).ntus[0]
T0 = datetime(2026, 1, 1, tzinfo=UTC)
REFRESH = timedelta(minutes=1)

times = st.sampled_from([T0, T0 + timedelta(seconds=30), T0 + timedelta(seconds=61)])
maybe_times = st.none() | times
refs = st.sampled_from([None, "C-1", "C-2"])
views = st.builds(
    SnmpView,
    icmp_filtered=st.booleans(),
    wan_if_index=st.sampled_from([None, 3]),
    wan_oper_status=st.sampled_from([None, 1, 2]),
    in_bps=st.sampled_from([None, 1.0, 2.0]),
    sys_uptime=st.sampled_from([None, 100, 200]),
    reboots=st.sampled_from([0, 1]),
)
states = st.builds(
    NtuState,
    status=st.sampled_from([Status.UP, Status.UP, Status.SUSPECT, Status.UNKNOWN]),
    since=times,
    outage_start=maybe_times,
    last_observation_at=maybe_times,
    last_success_at=maybe_times,
)
probes = st.none() | st.builds(
    LastProbe,
    rtt_avg=st.sampled_from([None, 0.001, 0.002]),
    loss=st.sampled_from([None, 0.0, 0.2]),
    jitter=st.just(None),
)


@st.composite
def tracked_entries(draw: st.DrawFn) -> Tracked:
    return Tracked(
        spec=SPEC,
        thresholds=quality.Thresholds(),
        state=draw(states),
        outage=Outage(ref=draw(refs)),
        degraded=Degraded(ref=draw(refs), reasons=draw(st.sampled_from([None, "loss"]))),
        signals=Signals(view=draw(views)),
        last_probe=draw(probes),
    )


@given(tracked_entries())
def test_settled_status_is_the_settled_part_of_the_public_status(tracked: Tracked) -> None:
    assert tracked.settled_status() == attrgetter(*_SETTLED)(tracked.public())


@settings(max_examples=300)
@given(tracked_entries(), st.none() | tracked_entries(), st.sampled_from([timedelta(0), REFRESH]))
def test_status_due_says_what_must_report_says(
    tracked: Tracked, sent: Tracked | None, refresh: timedelta
) -> None:
    last = sent.public() if sent is not None else None
    public = tracked.public()
    expected = public if must_report(last, public, refresh) else None
    assert status_due(tracked, last, refresh) == expected


def up(seen: datetime, **changes: object) -> StoredState:
    state = NtuState(status=Status.UP, since=T0, last_observation_at=seen, last_success_at=seen)
    return StoredState(state=state, case_ref=None, **changes)  # type: ignore[arg-type]


def test_an_up_entry_whose_figures_alone_moved_is_saved_once_they_are_refresh_newer() -> None:
    saved = up(T0)
    figures = SnmpView(in_bps=5.0, sys_uptime=100)
    assert not must_save(saved, up(T0 + timedelta(seconds=30), snmp=figures), REFRESH)
    assert must_save(saved, up(T0 + REFRESH, snmp=figures), REFRESH)
    # What is not a figure is saved at once, however recent.
    assert must_save(saved, up(T0 + timedelta(seconds=30), degraded_case_ref="C-9"), REFRESH)
    assert must_save(saved, up(T0, snmp=SnmpView(wan_oper_status=2)), REFRESH)
    # A flush (refresh 0) writes every change, never an unchanged state.
    assert must_save(saved, up(T0 + timedelta(seconds=1)), timedelta(0))
    assert not must_save(saved, up(T0), timedelta(0))
    assert must_save(None, saved, REFRESH)


@settings(max_examples=300)
@given(tracked_entries(), st.none() | tracked_entries(), st.sampled_from([timedelta(0), REFRESH]))
def test_must_save_writes_every_change_but_figures_held_back_by_refresh(
    tracked: Tracked, before: Tracked | None, refresh: timedelta
) -> None:
    new = tracked.stored()
    saved = before.stored() if before is not None else None
    # The rule as documented, spelt out field by field.
    if saved is None:
        expected = True
    elif saved == new:
        expected = False
    elif saved.state.status != Status.UP or new.state.status != Status.UP:
        expected = True
    else:
        figures = {"last_observation_at", "last_success_at"}
        snmp_figures = {"in_bps", "out_bps", "error_rate", "sys_uptime"}
        settled = [
            (getattr(saved.state, f), getattr(new.state, f))
            for f in NtuState.__dataclass_fields__
            if f not in figures
        ] + [
            (getattr(saved.snmp, f), getattr(new.snmp, f))
            for f in SnmpView.__dataclass_fields__
            if f not in snmp_figures
        ]
        seen_before, seen_after = saved.state.last_observation_at, new.state.last_observation_at
        expected = (
            any(a != b for a, b in settled)
            or (saved.case_ref, saved.degraded_case_ref, saved.degraded_reasons)
            != (new.case_ref, new.degraded_case_ref, new.degraded_reasons)
            or seen_before is None
            or seen_after is None
            or seen_after - seen_before >= refresh
        )
    assert must_save(saved, new, refresh) == expected
