"""Availability and SLA arithmetic (pure): scripted histories with figures worked out
by hand, periods in customers' time zones (DST months), and Hypothesis properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caseapi.reports.availability import (
    Outage,
    OutageCause,
    OutageKind,
    combine,
    merge,
    ntu_figures,
    subtract,
)
from caseapi.reports.period import PeriodError, month_period, parse_month, range_period
from caseapi.reports.recorder import counts
from caseapi.reports.sla import CaseFacts, Outcome, summarise

H = 3600.0
NOV_START = datetime(2026, 11, 1, tzinfo=UTC)
NOV_END = datetime(2026, 12, 1, tzinfo=UTC)
LATER = datetime(2027, 1, 1, tzinfo=UTC)  # "now": every period below has ended


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def down(
    start: datetime,
    end: datetime | None,
    *,
    cause: OutageCause = OutageCause.OWN,
    counted: bool = True,
    ref: str | None = "CS-2026-000001",
    kind: OutageKind = OutageKind.DOWN,
) -> Outage:
    return Outage(
        ntu_id="n1", kind=kind, cause=cause, start=start, end=end, counted=counted, case_ref=ref
    )


def gap(start: datetime, end: datetime | None) -> Outage:
    return Outage(
        ntu_id="n1",
        kind=OutageKind.DOWN,
        cause=OutageCause.NO_DATA,
        start=start,
        end=end,
        counted=False,
    )


def november(outages: list[Outage], maintenance: list[tuple[datetime, datetime]] = []):  # noqa: B006
    return ntu_figures(outages, start=NOV_START, end=NOV_END, now=LATER, maintenance=maintenance)


def test_no_outage_is_100_percent_of_720_hours() -> None:
    f = november([])
    assert f.period == 720 * H
    assert f.measured == 720 * H
    assert f.availability == 100.0
    assert (f.outages, f.mttr, f.mtbf) == (0, None, None)


def test_overlapping_maintenance_is_excluded_once() -> None:
    # Down 10:00-12:00; windows 11:00-11:30 and 11:15-12:30 overlap: one excluded
    # span 11:00-12:30 (1.5 h). Counted: 10:00-11:00 = 1 h of 720 - 1.5 = 718.5 h.
    f = november(
        [down(at(10, 10), at(10, 12))],
        maintenance=[(at(10, 11), at(10, 11, 30)), (at(10, 11, 15), at(10, 12, 30))],
    )
    assert f.maintenance == 1.5 * H
    assert f.measured == 718.5 * H
    assert f.downtime == 1 * H
    assert f.availability == pytest.approx(100 * (1 - 1 / 718.5))
    assert f.availability == pytest.approx(99.860821, abs=1e-6)
    assert (f.outages, f.longest_outage, f.mttr) == (1, 1 * H, 1 * H)
    assert f.mtbf == 717.5 * H  # measured uptime per outage


def test_outage_spanning_the_month_boundary_is_split_between_months() -> None:
    # 31 Oct 23:00 -> 1 Nov 02:00: 1 h in October, 2 h in November.
    outage = down(at(31, 23, month=10), at(1, 2))
    oct_f = ntu_figures([outage], start=datetime(2026, 10, 1, tzinfo=UTC), end=NOV_START, now=LATER)
    nov_f = november([outage])
    assert oct_f.period == 744 * H and oct_f.downtime == 1 * H
    assert nov_f.downtime == 2 * H
    assert oct_f.availability == pytest.approx(100 * (1 - 1 / 744))
    assert nov_f.availability == pytest.approx(100 * (1 - 2 / 720))
    assert oct_f.outages == nov_f.outages == 1
    assert oct_f.p1 == nov_f.p1 == 1


def test_upstream_outages_count_by_contract_and_overlaps_count_once() -> None:
    # Own 1:00-3:00 and upstream 2:00-4:00 (counted) overlap: 1:00-4:00 = 3 h, one
    # outage. An upstream outage the contract does not count (6:00-7:00) adds nothing.
    f = november(
        [
            down(at(3, 1), at(3, 3)),
            down(at(3, 2), at(3, 4), cause=OutageCause.UPSTREAM, ref="CS-2026-000002"),
            down(at(3, 6), at(3, 7), cause=OutageCause.UPSTREAM, counted=False, ref="CS-3"),
        ]
    )
    assert f.downtime == 3 * H
    assert f.outages == 1
    assert f.p1 == 3  # three cases had an outage of this NTU in the period
    assert f.availability == pytest.approx(100 * (1 - 3 / 720))


def test_no_data_is_neither_up_nor_down() -> None:
    # No data 5 Nov 00:00-06:00 (6 h); down 04:00-08:00: only 06:00-08:00 (2 h) is
    # known downtime; measured 720 - 6 = 714 h.
    f = november([gap(at(5, 0), at(5, 6)), down(at(5, 4), at(5, 8))])
    assert f.no_data == 6 * H
    assert f.measured == 714 * H
    assert f.downtime == 2 * H
    assert f.availability == pytest.approx(100 * (1 - 2 / 714))


def test_no_data_inside_maintenance_is_reported_once_as_maintenance() -> None:
    # Maintenance 00:00-04:00, no data 02:00-06:00: excluded 6 h, 4 h of it maintenance.
    f = november([gap(at(7, 2), at(7, 6))], maintenance=[(at(7, 0), at(7, 4))])
    assert (f.maintenance, f.no_data, f.measured) == (4 * H, 2 * H, 714 * H)


def test_an_outage_split_by_no_data_is_one_outage_with_its_known_downtime() -> None:
    f = november([down(at(9, 0), at(9, 5)), gap(at(9, 2), at(9, 3))])
    assert (f.downtime, f.outages, f.longest_outage) == (4 * H, 1, 4 * H)


def test_open_outage_runs_to_now_and_the_period_to_now() -> None:
    now = at(15, 12)
    f = ntu_figures([down(at(15, 10), None)], start=NOV_START, end=NOV_END, now=now)
    assert f.period == (14 * 24 + 12) * H
    assert f.downtime == 2 * H


def test_degraded_time_is_reported_and_counts_only_when_the_contract_says() -> None:
    p2 = down(at(12, 0), at(12, 3), kind=OutageKind.DEGRADED, counted=False, ref="CS-9")
    f = november([p2])
    assert (f.degraded, f.downtime, f.p2, f.p1) == (3 * H, 0.0, 1, 0)
    assert counts(OutageKind.DEGRADED, OutageCause.OWN, {}) is False
    assert counts(OutageKind.DEGRADED, OutageCause.OWN, {"availability_degraded": True})
    assert counts(OutageKind.DOWN, OutageCause.UPSTREAM, {}) is True
    assert counts(OutageKind.DOWN, OutageCause.UPSTREAM, {"availability_upstream": False}) is False
    assert counts(OutageKind.DOWN, OutageCause.NO_DATA, {}) is False


def test_groups_add_ntu_time() -> None:
    # Two NTUs, one down 7.2 h of 720 h: the pair lost 7.2 of 1,440 NTU-hours.
    a = november([down(at(2, 0), at(2, 7, 12))])
    b = november([])
    both = combine([a, b])
    assert both.ntus == 2 and both.period == 1440 * H
    assert both.availability == pytest.approx(99.5)
    assert a.availability == pytest.approx(99.0)


# -- periods and time zones -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "year", "month", "hours"),
    [
        ("Europe/London", 2026, 3, 743),  # clocks go forward on 29 March
        ("Europe/London", 2026, 10, 745),  # and back on 25 October
        ("America/New_York", 2026, 11, 721),  # back on 1 November
        ("America/New_York", 2026, 3, 743),  # forward on 8 March
        ("Asia/Tokyo", 2026, 3, 744),  # no DST
        (None, 2026, 2, 672),  # UTC when the customer has no zone
    ],
)
def test_month_length_in_the_customers_zone(
    zone: str | None, year: int, month: int, hours: int
) -> None:
    period = month_period(year, month, zone)
    assert period.seconds == hours * H
    assert period.timezone == (zone or "UTC")


def test_dst_month_availability_uses_743_hours() -> None:
    period = month_period(2026, 3, "Europe/London")
    # Local midnight 1 March is 00:00 UTC (GMT); 1 April is 23:00 UTC on 31 March (BST).
    assert period.start == datetime(2026, 3, 1, tzinfo=UTC)
    assert period.end == datetime(2026, 3, 31, 23, tzinfo=UTC)
    f = ntu_figures(
        [down(datetime(2026, 3, 29, 0, 30, tzinfo=UTC), datetime(2026, 3, 29, 1, 30, tzinfo=UTC))],
        start=period.start,
        end=period.end,
        now=LATER,
    )
    assert f.availability == pytest.approx(100 * (1 - 1 / 743))
    # An outage at 23:30 UTC on 31 March is in April for a London customer.
    late = down(datetime(2026, 3, 31, 23, 30, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    f = ntu_figures([late], start=period.start, end=period.end, now=LATER)
    assert f.downtime == 0.0


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026-1", "26-11", "2026-11-01", ""])
def test_bad_months_name_the_field(text: str) -> None:
    with pytest.raises(PeriodError) as info:
        parse_month(text)
    assert info.value.field == "month"


def test_range_must_end_after_it_starts() -> None:
    with pytest.raises(PeriodError) as info:
        range_period(at(2, 0), at(1, 0), None)
    assert info.value.field == "end"
    with pytest.raises(PeriodError) as info:
        range_period(datetime(2026, 11, 1), at(2, 0), None)  # naive on purpose
    assert info.value.field == "start"
    with pytest.raises(PeriodError, match="time zone"):
        month_period(2026, 11, "Mars/Olympus_Mons")


# -- properties -------------------------------------------------------------------------------

MINUTES = 30 * 24 * 60
offsets = st.integers(min_value=-3 * 24 * 60, max_value=MINUTES + 3 * 24 * 60)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Outage], list[tuple[datetime, datetime]]]:
    def span() -> tuple[datetime, datetime]:
        a, b = sorted((draw(offsets), draw(offsets)))
        return NOV_START + timedelta(minutes=a), NOV_START + timedelta(minutes=b + 1)

    outages = []
    for _ in range(draw(st.integers(0, 8))):
        s, e = span()
        outages.append(
            Outage(
                ntu_id="n1",
                kind=draw(st.sampled_from(OutageKind)),
                cause=draw(
                    st.sampled_from([c for c in OutageCause if c is not OutageCause.MAINTENANCE])
                ),
                start=s,
                end=draw(st.sampled_from([e, None])),
                counted=draw(st.booleans()),
                case_ref=f"CS-{draw(st.integers(1, 4))}",
            )
        )
    maintenance = [span() for _ in range(draw(st.integers(0, 3)))]
    return outages, maintenance


@settings(max_examples=150, deadline=None)
@given(history=histories(), cut=st.integers(min_value=1, max_value=MINUTES - 1))
def test_properties_bounds_and_splitting(
    history: tuple[list[Outage], list[tuple[datetime, datetime]]], cut: int
) -> None:
    outages, maintenance = history
    now = NOV_END + timedelta(days=1)
    whole = ntu_figures(outages, start=NOV_START, end=NOV_END, now=now, maintenance=maintenance)
    assert whole.availability is None or 0.0 <= whole.availability <= 100.0
    assert 0.0 <= whole.downtime <= whole.measured <= whole.period == 720 * H
    assert whole.maintenance + whole.no_data + whole.measured == pytest.approx(whole.period)
    middle = NOV_START + timedelta(minutes=cut)
    first = ntu_figures(outages, start=NOV_START, end=middle, now=now, maintenance=maintenance)
    second = ntu_figures(outages, start=middle, end=NOV_END, now=now, maintenance=maintenance)
    assert first.downtime + second.downtime == pytest.approx(whole.downtime)
    assert first.measured + second.measured == pytest.approx(whole.measured)
    assert first.no_data + second.no_data == pytest.approx(whole.no_data)
    assert first.maintenance + second.maintenance == pytest.approx(whole.maintenance)


@settings(max_examples=100, deadline=None)
@given(
    a=st.lists(st.tuples(offsets, offsets), max_size=6),
    b=st.lists(st.tuples(offsets, offsets), max_size=6),
)
def test_subtract_agrees_with_minute_sets(
    a: list[tuple[int, int]], b: list[tuple[int, int]]
) -> None:
    def spans(pairs: list[tuple[int, int]]) -> list[tuple[datetime, datetime]]:
        return [
            (NOV_START + timedelta(minutes=min(x, y)), NOV_START + timedelta(minutes=max(x, y)))
            for x, y in pairs
        ]

    def minutes(pairs: list[tuple[datetime, datetime]]) -> set[int]:
        out: set[int] = set()
        for s, e in pairs:
            first = int((s - NOV_START).total_seconds() // 60)
            out.update(range(first, first + int((e - s).total_seconds() // 60)))
        return out

    result = subtract(spans(a), spans(b))
    assert minutes(result) == minutes(spans(a)) - minutes(spans(b))
    assert merge(result) == result  # disjoint and sorted


# -- SLA --------------------------------------------------------------------------------------


def facts(ref: str, **changes: object) -> CaseFacts:
    base: dict[str, object] = {
        "ref": ref,
        "customer_id": "acme",
        "priority": "P1",
        "type": "incident",
        "created_at": at(3, 10),
        "first_response_due_at": at(3, 10, 30),
        "first_responded_at": None,
        "first_response_breached_at": None,
        "ttr_due_at": at(3, 14),
        "ttr_breached_at": None,
        "restored_at": None,
        "solved_at": None,
        "paused": False,
        "escalation_level": "L1",
    }
    base.update(changes)
    return CaseFacts(**base)  # type: ignore[arg-type]


def test_sla_outcomes_per_case() -> None:
    now = at(3, 12)
    cases = [
        facts("A", first_responded_at=at(3, 10, 20), restored_at=at(3, 11)),  # all met
        facts("B", first_responded_at=at(3, 10, 45), restored_at=at(3, 15)),  # both late
        facts("C", commitments_met=2, commitments_missed=1, escalation_level="L2"),  # FR missed
        facts("D", created_at=at(3, 11, 50), first_response_due_at=at(3, 12, 20)),  # pending
        facts("E", priority="P2", ttr_breached_at=at(3, 11), first_responded_at=at(3, 10, 5)),
        facts(
            "F",
            priority="P3",
            type="general_request",
            ttr_due_at=None,
            first_responded_at=at(3, 10, 1),
        ),
    ]
    s = summarise(cases, now)
    assert s.cases == 6
    assert (s.first_response.met, s.first_response.missed, s.first_response.pending) == (3, 2, 1)
    p1 = s.time_to_repair["P1"]
    assert (p1.met, p1.missed, p1.pending) == (1, 1, 2)
    assert (s.time_to_repair["P2"].missed, s.time_to_repair["P3"].met) == (1, 0)
    assert (s.commitments_met, s.commitments_missed, s.escalated) == (2, 1, 1)
    assert [(v.facts.ref, v.missed) for v in s.missed_cases] == [
        ("B", ("first_response", "time_to_repair")),
        ("C", ("first_response", "commitment")),
        ("E", ("time_to_repair",)),
    ]
    verdict_f = s.verdicts[-1]
    assert verdict_f.time_to_repair is Outcome.NOT_APPLICABLE
