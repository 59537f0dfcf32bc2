"""Business-hours calendars: hand-worked deadlines, properties, settings and lifecycle."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from caseapi.cases import lifecycle
from caseapi.cases.calendar import (
    WEEKDAYS,
    Calendar,
    CalendarError,
    add_business_time,
    business_time_between,
)
from caseapi.cases.config import CaseSettings
from caseapi.cases.enums import CaseEventKind, CasePriority, CaseStatus, CaseSubject, CaseType
from caseapi.cases.schemas import CaseCreate
from caseapi.cases.service import CaseService
from caseapi.cases.snapshot import CaseSnapshot, ChangePriority, CustomerReply, Transition
from caseapi.cases.store import on_customer_reply
from nms.app import cli
from nms.app.settings import load_settings
from nms.clock import FakeClock
from nms.errors import ConfigError
from tests.caseapi.conftest import Database
from tests.caseapi.lifecycle_fixtures import ENGINEER, advance, events_of, seed, ticker

M = timedelta(minutes=1)
H = timedelta(hours=1)
ROME = ZoneInfo("Europe/Rome")
WEEKDAYS_9_18 = {day: ["09:00-18:00"] for day in WEEKDAYS[:5]}
#: Monday to Friday 09:00-18:00 in Rome; 8 December (a Tuesday in 2026) is a holiday.
OFFICE = Calendar.build(
    "office", timezone="Europe/Rome", hours=WEEKDAYS_9_18, holidays=[date(2026, 12, 8)]
)
ALL_DAY = Calendar.build(
    "all-day", timezone="Europe/Rome", hours={d: ["00:00-24:00"] for d in WEEKDAYS}
)


def rome(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ROME)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# -- hand-worked deadlines -------------------------------------------------------------


def test_friday_1750_plus_30_minutes_is_monday_0920() -> None:
    due = add_business_time(OFFICE, rome(2026, 12, 4, 17, 50), 30 * M)
    assert due == rome(2026, 12, 7, 9, 20) == utc(2026, 12, 7, 8, 20)
    assert due.tzinfo is UTC
    assert business_time_between(OFFICE, rome(2026, 12, 4, 17, 50), due) == 30 * M


def test_a_holiday_is_closed_all_day() -> None:
    # Monday 17:30 + 1 h: 30 min on Monday, Tuesday 8 December is a holiday, Wednesday 09:30.
    due = add_business_time(OFFICE, rome(2026, 12, 7, 17, 30), H)
    assert due == rome(2026, 12, 9, 9, 30)
    assert business_time_between(OFFICE, rome(2026, 12, 8, 0, 0), rome(2026, 12, 9, 0, 0)) == (
        timedelta(0)
    )


def test_a_start_in_closed_hours_waits_for_the_opening() -> None:
    assert add_business_time(OFFICE, rome(2026, 12, 5, 11, 0), 30 * M) == rome(2026, 12, 7, 9, 30)
    assert add_business_time(OFFICE, rome(2026, 12, 7, 7, 0), 30 * M) == rome(2026, 12, 7, 9, 30)


def test_several_intervals_a_day() -> None:
    split = Calendar.build(
        "split", timezone="Europe/Rome", hours={"mon": ["13:00-17:00", "08:00-12:00"]}
    )
    assert split.hours[0] == ((480, 720), (780, 1020))
    assert add_business_time(split, rome(2026, 12, 7, 11, 30), H) == rome(2026, 12, 7, 13, 30)


def test_ordinary_hours_across_the_dst_weekends() -> None:
    # Spring forward (Sunday 29 March 2026): Friday 17:00 CET + 2 h = Monday 10:00 CEST.
    due = add_business_time(OFFICE, rome(2026, 3, 27, 17, 0), 2 * H)
    assert due == rome(2026, 3, 30, 10, 0) == utc(2026, 3, 30, 8, 0)
    # Fall back (Sunday 25 October 2026): Friday 17:00 CEST + 2 h = Monday 10:00 CET.
    due = add_business_time(OFFICE, rome(2026, 10, 23, 17, 0), 2 * H)
    assert due == rome(2026, 10, 26, 10, 0) == utc(2026, 10, 26, 9, 0)


def test_hours_touching_the_changed_hour() -> None:
    night = Calendar.build("night", timezone="Europe/Rome", hours={"sun": ["02:00-03:00"]})
    # Spring forward: 02:00-03:00 does not exist that night, so nothing is open.
    assert night.open_intervals(date(2026, 3, 29)) == []
    # Fall back: it happens twice, and both are open (2 real hours).
    assert night.open_intervals(date(2026, 10, 25)) == [
        (utc(2026, 10, 25, 0), utc(2026, 10, 25, 2))
    ]
    # A boundary inside the gap is the instant of the change (03:00 CEST, 01:00 UTC).
    early = Calendar.build("early", timezone="Europe/Rome", hours={"sun": ["01:00-02:30"]})
    assert early.open_intervals(date(2026, 3, 29)) == [(utc(2026, 3, 29, 0), utc(2026, 3, 29, 1))]
    late = Calendar.build("late", timezone="Europe/Rome", hours={"sun": ["02:30-04:00"]})
    assert late.open_intervals(date(2026, 3, 29)) == [(utc(2026, 3, 29, 1), utc(2026, 3, 29, 2))]
    # 01:00 CET + 90 min of 01:00-04:00: 02:00 CET is 03:00 CEST, then 30 more minutes.
    wide = Calendar.build("wide", timezone="Europe/Rome", hours={"sun": ["01:00-04:00"]})
    assert add_business_time(wide, rome(2026, 3, 29, 1, 0), 90 * M) == rome(2026, 3, 29, 3, 30)
    day = (rome(2026, 3, 29, 0, 0), rome(2026, 3, 30, 0, 0))
    assert business_time_between(wide, *day) == 2 * H
    # Fall back with boundaries inside the repeated hour: open whenever the wall clock
    # reads an open time, so 02:00-02:15 and 02:45-03:00 count twice, 02:15-02:45 never.
    split = Calendar.build(
        "split", timezone="Europe/Rome", hours={"sun": ["01:00-02:15", "02:45-04:00"]}
    )
    assert split.open_intervals(date(2026, 10, 25)) == [
        (utc(2026, 10, 24, 23, 0), utc(2026, 10, 25, 0, 15)),
        (utc(2026, 10, 25, 0, 45), utc(2026, 10, 25, 1, 15)),
        (utc(2026, 10, 25, 1, 45), utc(2026, 10, 25, 3, 0)),
    ]
    day = (rome(2026, 10, 25, 0, 0), rome(2026, 10, 26, 0, 0))
    assert business_time_between(split, *day) == 3 * H


def test_all_day_is_24x7_even_across_dst() -> None:
    # Business time is real elapsed time while open: the 23-hour and 25-hour days count
    # as such, and the days' intervals touch, so nothing is ever paused.
    assert business_time_between(ALL_DAY, rome(2026, 3, 29), rome(2026, 3, 30)) == 23 * H
    assert business_time_between(ALL_DAY, rome(2026, 10, 25), rome(2026, 10, 26)) == 25 * H
    for local in (rome(2026, 3, 28, 23, 30), rome(2026, 10, 24, 22, 15)):
        # In UTC: Python adds to a ZoneInfo datetime in wall time, which is the trap.
        start = local.astimezone(UTC)
        for duration in (30 * M, 3 * H, 2 * timedelta(days=1) + 7 * M):
            assert add_business_time(ALL_DAY, start, duration) == start + duration


def test_zero_is_the_start_itself() -> None:
    start = rome(2026, 12, 5, 11, 0)
    assert add_business_time(OFFICE, start, timedelta(0)) == start


# -- refusals --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timezone", "hours", "message"),
    [
        ("Europe/Rome", {}, "hours: the calendar has no open hours at all"),
        ("Europe/Rome", {"sat": []}, "hours: the calendar has no open hours at all"),
        ("Mars/Olympus", WEEKDAYS_9_18, "timezone: unknown time zone 'Mars/Olympus'"),
        ("Europe/Rome", {"mon": ["09:00-08:00"]}, "hours.mon: '09:00-08:00' ends before it starts"),
        ("Europe/Rome", {"tue": ["9-17"]}, "hours.tue: '9-17' is not an interval"),
        ("Europe/Rome", {"wed": ["09:00-25:00"]}, "hours.wed: '09:00-25:00' has a time that"),
        ("Europe/Rome", {"thu": ["09:00-12:00", "11:00-13:00"]}, "hours.thu: '11:00-13:00' overl"),
        ("Europe/Rome", {"monday": ["09:00-12:00"]}, "hours.monday: unknown weekday"),
    ],
)
def test_bad_calendars_are_refused_naming_the_field(
    timezone: str, hours: dict[str, list[str]], message: str
) -> None:
    with pytest.raises(CalendarError, match=message.replace("(", r"\(")):
        Calendar.build("c", timezone=timezone, hours=hours)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="naive"):
        add_business_time(OFFICE, datetime(2026, 12, 4, 17, 50), H)
    with pytest.raises(ValueError, match="must not be negative"):
        add_business_time(OFFICE, rome(2026, 12, 4, 17, 50), -H)


def test_the_search_is_bounded() -> None:
    # Open only on Mondays, and every Monday for four years is a holiday.
    mondays = [date(2026, 11, 30) + timedelta(weeks=n) for n in range(4 * 53)]
    never = Calendar.build(
        "never", timezone="UTC", hours={"mon": ["09:00-10:00"]}, holidays=mondays
    )
    with pytest.raises(CalendarError, match="does not fit in the 1098 days"):
        add_business_time(never, utc(2026, 12, 1), M)


# -- properties ------------------------------------------------------------------------

#: Lord Howe moves 30 minutes; Santiago changes at midnight; Kolkata and UTC never.
ZONES = (
    "Europe/Rome",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Asia/Kolkata",
    "UTC",
)


@st.composite
def calendars(draw: st.DrawFn) -> Calendar:
    hours: dict[str, list[str]] = {}
    for day in WEEKDAYS:
        # Boundaries on a half-hour grid, so the 01:00-03:00 DST hours are often hit.
        cuts = sorted(draw(st.sets(st.integers(0, 48), max_size=4)))
        pairs = list(zip(cuts[::2], cuts[1::2], strict=False))
        hours[day] = [
            f"{a // 2:02d}:{a % 2 * 30:02d}-{b // 2:02d}:{b % 2 * 30:02d}" for a, b in pairs
        ]
    if not any(hours.values()):
        hours["wed"] = ["09:00-17:00"]
    holidays = draw(st.lists(st.dates(date(2026, 1, 1), date(2026, 12, 31)), max_size=20))
    return Calendar.build(
        "c", timezone=draw(st.sampled_from(ZONES)), hours=hours, holidays=holidays
    )


#: Days around the 2026 offset changes of ``ZONES``, where the mistakes would be.
CHANGES = [
    datetime(2026, month, day, tzinfo=UTC)
    for month, day in ((3, 8), (3, 29), (4, 5), (9, 6), (10, 4), (10, 25), (11, 1))
]
anywhere = st.datetimes(datetime(2026, 1, 1), datetime(2026, 12, 31), timezones=st.just(UTC))
near_a_change = st.builds(
    lambda day, minutes: day + timedelta(minutes=minutes),
    st.sampled_from(CHANGES),
    st.integers(-2 * 24 * 60, 2 * 24 * 60),
)
starts = st.one_of(anywhere, near_a_change)
durations = st.timedeltas(timedelta(0), timedelta(hours=30))
FEW = settings(max_examples=100, deadline=None)


@FEW
@given(calendars(), starts, durations)
def test_never_earlier_than_24x7_and_round_trips(
    calendar: Calendar, start: datetime, duration: timedelta
) -> None:
    due = add_business_time(calendar, start, duration)
    assert due >= start + duration
    assert business_time_between(calendar, start, due) == duration


@FEW
@given(calendars(), starts, durations, durations)
def test_monotone_and_additive(
    calendar: Calendar, start: datetime, a: timedelta, b: timedelta
) -> None:
    first = add_business_time(calendar, start, a)
    both = add_business_time(calendar, start, a + b)
    assert first <= both
    assert add_business_time(calendar, first, b) == both


@FEW
@given(calendars(), starts, durations.filter(lambda d: d > timedelta(0)))
def test_a_deadline_is_inside_an_open_interval(
    calendar: Calendar, start: datetime, duration: timedelta
) -> None:
    due = add_business_time(calendar, start, duration)
    intervals = calendar.intervals(due, due)
    assert any(begins < due <= ends for begins, ends in intervals)
    # And the clock paused exactly over closed time: the real time it took minus
    # the open time in it is the closed time in between.
    closed = (due - start) - business_time_between(calendar, start, due)
    gaps = timedelta(0)
    cursor = start
    for begins, ends in calendar.intervals(start, due):
        if ends <= cursor or begins >= due:
            continue
        gaps += max(begins - cursor, timedelta(0))
        cursor = max(cursor, min(ends, due))
    assert closed == gaps + (due - cursor)


def open_by_the_wall_clock(calendar: Calendar, instant: datetime) -> bool:
    """The definition, applied literally to one instant."""
    local = instant.astimezone(calendar.tz)
    minute = local.hour * 60 + local.minute
    return local.date() not in calendar.holidays and any(
        start <= minute < end for start, end in calendar.hours[local.weekday()]
    )


@settings(max_examples=40, deadline=None)
@given(calendars(), near_a_change, st.integers(0, 2 * 24 * 60))
def test_open_time_is_the_minutes_the_wall_clock_reads_open(
    calendar: Calendar, start: datetime, minutes: int
) -> None:
    # Every boundary (intervals on the half hour, offset changes) falls on a minute,
    # so counting minutes is exact.
    counted = sum(open_by_the_wall_clock(calendar, start + n * M) for n in range(minutes))
    assert business_time_between(calendar, start, start + minutes * M) == counted * M


# -- settings --------------------------------------------------------------------------

OFFICE_SETTINGS = {"timezone": "Europe/Rome", "hours": WEEKDAYS_9_18, "holidays": ["2026-12-08"]}


def office_settings(**extra: object) -> CaseSettings:
    return CaseSettings.model_validate(
        {"calendars": {"office": OFFICE_SETTINGS}, "business_hours": {"p3": "office"}, **extra}
    )


def test_default_is_24x7_everywhere() -> None:
    policy = CaseSettings().sla().policy()
    assert all(policy.calendars[p] is None for p in CasePriority)
    start = utc(2026, 12, 4, 16, 50)
    assert policy.due(CasePriority.P3, start, 30 * M) == start + 30 * M


def test_business_hours_per_priority_and_per_contract() -> None:
    sla = office_settings().sla()
    policy = sla.policy()
    assert policy.calendars[CasePriority.P1] is None
    assert policy.calendars[CasePriority.P3] == OFFICE
    # A contract on business hours for everything, but its P1 still 24x7.
    policy = sla.policy(customer_attributes={"calendar": "office", "calendar_p1": "24x7"})
    assert [policy.calendars[p] for p in CasePriority] == [None, OFFICE, OFFICE]
    # A contract with 24x7 support; an unknown name is ignored (logged), as other typos.
    assert sla.policy(customer_attributes={"calendar": "24x7"}).calendars[CasePriority.P3] is None
    policy = sla.policy(customer_attributes={"calendar_p3": "nope"})
    assert policy.calendars[CasePriority.P3] == OFFICE


@pytest.mark.parametrize(
    ("values", "location", "message"),
    [
        ({"calendars": {"o": {"timezone": "Nowhere/City", "hours": WEEKDAYS_9_18}}},
         "calendars.o", "timezone: unknown time zone 'Nowhere/City'"),
        ({"calendars": {"o": {"timezone": "UTC", "hours": {"sun": []}}}},
         "calendars.o", "hours: the calendar has no open hours at all"),
        ({"calendars": {"o": {"timezone": "UTC", "hours": {"fri": ["18:00-09:00"]}}}},
         "calendars.o", "hours.fri: '18:00-09:00' ends before it starts"),
        ({"calendars": {"o": {"timezone": "UTC", "hours": WEEKDAYS_9_18, "holidays": ["12/25"]}}},
         "calendars.o.holidays.0", "valid date"),
        ({"calendars": {"o": {"hours": WEEKDAYS_9_18}}}, "calendars.o.timezone", "Field required"),
        ({"calendars": {"o": {"timezone": "UTC", "hours": WEEKDAYS_9_18, "days": {}}}},
         "calendars.o.days", "Extra inputs are not permitted"),
        ({"business_hours": {"p3": "office"}}, "", "business_hours.p3: no calendar 'office'"),
        ({"business_hours": {"p4": "24x7"}}, "business_hours.p4", "Extra inputs"),
        ({"calendars": {"24x7": OFFICE_SETTINGS}}, "", "calendars.24x7: the name '24x7' means"),
    ],
)  # fmt: skip
def test_bad_calendar_settings_name_the_key(
    values: dict[str, object], location: str, message: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        CaseSettings.model_validate(values)
    (error,) = raised.value.errors()
    assert ".".join(str(part) for part in error["loc"]) == location
    assert message in error["msg"]


def test_a_bad_calendar_in_the_settings_file_stops_start_up_naming_the_key(
    tmp_path: Path,
) -> None:
    path = tmp_path / "nms.yaml"
    path.write_text(
        "cases:\n"
        "  calendars:\n"
        "    office: {timezone: Europe/Roma, hours: {mon: ['09:00-18:00']}}\n"
        "  business_hours: {p3: office}\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert raised.value.problems == [
        f"{path}: cases.calendars.office: timezone: unknown time zone 'Europe/Roma' "
        "(an IANA name such as 'Europe/Rome')"
    ]
    path.write_text(path.read_text().replace("Europe/Roma", "Europe/Rome"))
    policy = load_settings(path).cases.sla().policy()
    assert policy.calendars[CasePriority.P3] == Calendar.build(
        "office", timezone="Europe/Rome", hours={"mon": ["09:00-18:00"]}
    )


def test_config_show_prints_calendars_as_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nms.yaml"
    path.write_text(
        "cases:\n  calendars:\n    office: {timezone: Europe/Rome, "
        "hours: {mon: ['09:00-18:00']}, holidays: ['2026-12-25']}\n"
    )
    assert cli.main(["config", "show", "--config", str(path)]) == 0
    shown = capsys.readouterr().out
    assert (
        "  calendars:\n    office:\n      timezone: Europe/Rome\n      hours:\n"
        "        mon: [09:00-18:00]\n      holidays: [2026-12-25]\n  business_hours:\n"
        "    p1: null\n"
    ) in shown


# -- the lifecycle ---------------------------------------------------------------------


def test_resume_re_places_the_remaining_repair_time_in_business_hours() -> None:
    policy = office_settings(ttr={"p3": "8h"}).sla().policy()
    created = rome(2026, 12, 14, 9, 0)  # a Monday
    deadlines = lifecycle.initial_deadlines(
        created_at=created, priority=CasePriority.P3, policy=policy
    )
    assert deadlines["ttr_due_at"] == rome(2026, 12, 14, 17, 0)
    case = CaseSnapshot(
        status=CaseStatus.IN_PROGRESS,
        type=CaseType.GENERAL_REQUEST,
        priority=CasePriority.P3,
        created_at=created,
        first_response_due_at=deadlines["first_response_due_at"],
        unassigned_due_at=deadlines["unassigned_due_at"],
        ttr_due_at=deadlines["ttr_due_at"],
    )
    # Waiting on the customer from 13:00 (4 h used) until Friday 17:00.
    waiting = lifecycle.step(
        case, Transition(to=CaseStatus.WAITING_CUSTOMER, actor="e"), rome(2026, 12, 14, 13), policy
    ).snapshot
    resumed = lifecycle.step(
        waiting, CustomerReply(actor="c"), rome(2026, 12, 18, 17), policy
    ).snapshot
    # 4 h left: Friday 17:00-18:00, then Monday 09:00-12:00.
    assert resumed.ttr_due_at == rome(2026, 12, 21, 12, 0)
    assert resumed.paused_at is None


@pytest.mark.parametrize("chosen_by", ["settings", "contract"])
async def test_a_p3_on_friday_evening_is_due_monday_and_not_breached_over_the_weekend(
    database: Database, chosen_by: str
) -> None:
    clock = FakeClock(start=rome(2026, 12, 4, 17, 50).astimezone(UTC))
    if chosen_by == "settings":  # cases.business_hours.p3
        sla = office_settings(ttr={"p3": "8h"}).sla()
        await seed(database)
    else:  # every priority 24x7 but this customer's P3 (attributes.calendar_p3)
        sla = CaseSettings.model_validate(
            {"calendars": {"office": OFFICE_SETTINGS}, "ttr": {"p3": "8h"}}
        ).sla()
        await seed(database, calendar_p3="office")
    service = CaseService(sessionmaker=database.sessionmaker, clock=clock, sla=sla)
    draft = CaseCreate(
        type=CaseType.GENERAL_REQUEST,
        subject=CaseSubject.INFORMATION_REQUEST,
        summary="question",
        customer_id="cust-1",
        priority=CasePriority.P3,
    )
    ref = (await service.create_case(ENGINEER, draft)).case.ref
    case = await service.get_case(ref)
    assert case.first_response_due_at == utc(2026, 12, 7, 8, 20)  # Monday 09:20 in Rome
    assert case.unassigned_due_at == utc(2026, 12, 7, 8, 50)  # 1 h: 10 min Friday, 50 Monday
    assert case.ttr_due_at == utc(2026, 12, 7, 15, 50)  # 8 h: 10 min Friday, 7 h 50 Monday
    tick = ticker(database, clock, service)
    # Over the weekend the ticker runs and nothing is due.
    while clock.now() + 6 * H < utc(2026, 12, 7, 8, 19):
        await advance(clock, tick, 6 * H)
    await advance(clock, tick, utc(2026, 12, 7, 8, 19) - clock.now())
    assert await events_of(service, ref, CaseEventKind.SLA_BREACHED) == []
    await advance(clock, tick, M)
    assert await events_of(service, ref, CaseEventKind.SLA_BREACHED) == [
        {"clock": "first_response", "due_at": utc(2026, 12, 7, 8, 20).isoformat()}
    ]
    # Waiting on the customer from Monday 09:20 to Tuesday (a holiday) noon: the
    # customer's reply, through the comment hook, resumes on the business clock.
    await service.act(
        ENGINEER, ref, lambda _: Transition(to=CaseStatus.WAITING_CUSTOMER, actor="e")
    )
    clock.advance(utc(2026, 12, 8, 11, 0) - clock.now())
    async with database.sessionmaker() as session:
        row = await service.get_case(ref)
        await on_customer_reply(session, case_id=row.id, at=clock.now(), actor="c", sla=service.sla)
        await session.commit()
    # 7 h 30 min was left at 09:20; from Wednesday 09:00 that is 16:30 (15:30 UTC).
    assert (await service.get_case(ref)).ttr_due_at == utc(2026, 12, 9, 15, 30)


def test_a_priority_change_moves_the_repair_deadline_to_the_new_clock() -> None:
    policy = office_settings(ttr={"p3": "8h"}).sla().policy()
    created = rome(2026, 12, 4, 17, 50)  # Friday
    deadlines = lifecycle.initial_deadlines(
        created_at=created, priority=CasePriority.P3, policy=policy
    )
    assert deadlines["ttr_due_at"] == rome(2026, 12, 7, 16, 50)  # Monday, business hours
    case = CaseSnapshot(
        status=CaseStatus.IN_PROGRESS,
        type=CaseType.INCIDENT,
        priority=CasePriority.P3,
        created_at=created,
        ttr_due_at=deadlines["ttr_due_at"],
    )
    now = rome(2026, 12, 4, 18, 0)
    raised = lifecycle.step(case, ChangePriority(CasePriority.P1, actor="e"), now, policy).snapshot
    assert raised.ttr_due_at == rome(2026, 12, 4, 21, 50)  # P1 runs 24x7: 4 h from creation
    lowered = lifecycle.step(raised, ChangePriority(CasePriority.P3, actor="e"), now, policy)
    assert lowered.snapshot.ttr_due_at == rome(2026, 12, 7, 16, 50)
