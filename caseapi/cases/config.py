"""The ``cases.*`` settings: the one place every case default is written.

``CaseSettings.sla()`` turns them into the ``SlaSettings`` the services and the
ticker apply; nothing else in the case service states a default duration.
"""

from __future__ import annotations

from datetime import date, timedelta

from pydantic import model_validator

from caseapi.cases.calendar import Calendar
from caseapi.cases.enums import CasePriority
from caseapi.cases.sla import ALWAYS, SlaSettings
from caseapi.core.config import Section
from caseapi.core.durations import Duration, positive


class MonitoringWindowSettings(Section):
    p1: Duration = timedelta(hours=24)
    p2: Duration = timedelta(hours=72)


class RepairTimeSettings(Section):
    """Default time to repair per priority (an NTU's ``attributes.ttr`` overrides)."""

    p1: Duration | None = timedelta(hours=4)
    p2: Duration | None = timedelta(hours=8)
    p3: Duration | None = None


class WaitingCustomerSettings(Section):
    reminder_after: Duration = timedelta(days=2)
    close_after: Duration = timedelta(days=4)
    """Auto-close after this long without a reply (a customer's
    ``attributes.waiting_customer_close_after`` overrides, e.g. 25d)."""
    recheck: Duration = timedelta(hours=1)
    """How often a held auto-close is retried while the NTU is still down."""


class CalendarSettings(Section):
    """One business-hours calendar (``cases.calendars.<name>``).

    ``hours`` maps ``mon`` ... ``sun`` to local intervals (``"09:00-13:00"``,
    ``"14:00-18:00"``; ``"00:00-24:00"`` is all day; a weekday left out is closed);
    ``holidays`` are local dates closed all day.
    """

    timezone: str
    hours: dict[str, list[str]] = {}
    holidays: list[date] = []

    @model_validator(mode="after")
    def _check(self) -> CalendarSettings:
        self.calendar("check")  # refuses, naming the field, what cannot be a calendar
        return self

    def calendar(self, name: str) -> Calendar:
        return Calendar.build(
            name, timezone=self.timezone, hours=self.hours, holidays=self.holidays
        )


class BusinessHoursSettings(Section):
    """The calendar each priority's first response, unassigned flag and time to
    repair run on: a name from ``cases.calendars``; unset (or ``24x7``) is 24x7."""

    p1: str | None = None
    p2: str | None = None
    p3: str | None = None


class CaseSettings(Section):
    monitoring_window: MonitoringWindowSettings = MonitoringWindowSettings()
    first_response: Duration = timedelta(minutes=30)
    """Per-contract override: a customer's ``attributes.first_response`` (e.g. 2h)."""
    unassigned_after: Duration = timedelta(hours=1)
    ttr: RepairTimeSettings = RepairTimeSettings()
    calendars: dict[str, CalendarSettings] = {}
    business_hours: BusinessHoursSettings = BusinessHoursSettings()
    waiting_customer: WaitingCustomerSettings = WaitingCustomerSettings()
    dispatch_notice: Duration = timedelta(hours=24)
    ticker_interval: Duration = timedelta(seconds=30)
    """How often due case deadlines (SLA breaches, windows, reminders) are acted on."""
    at_risk_within: Duration = timedelta(minutes=15)
    """A running SLA deadline (first response, time to repair, a commitment) due
    within this is "at risk": the assignee (else the team's on-call person) is
    alerted once per deadline, and ``nms_cases_sla_at_risk`` counts it. 0: no alerts."""

    @model_validator(mode="after")
    def _check(self) -> CaseSettings:
        for name in ("first_response", "unassigned_after", "ticker_interval"):
            positive(getattr(self, name))
        if self.at_risk_within < timedelta(0):
            raise ValueError("at_risk_within: must not be negative")
        for window in (self.monitoring_window.p1, self.monitoring_window.p2):
            positive(window)
        w = self.waiting_customer
        for value in (w.reminder_after, w.close_after, w.recheck):
            positive(value)
        if ALWAYS in self.calendars:
            raise ValueError(f"calendars.{ALWAYS}: the name {ALWAYS!r} means no calendar")
        for priority in ("p1", "p2", "p3"):
            name = getattr(self.business_hours, priority)
            if name is not None and name != ALWAYS and name not in self.calendars:
                known = ", ".join(sorted(self.calendars)) or "none configured"
                raise ValueError(
                    f"business_hours.{priority}: no calendar {name!r} in cases.calendars "
                    f"({known}; or {ALWAYS!r})"
                )
        return self

    def sla(self) -> SlaSettings:
        """The SLA defaults the case services and the ticker apply."""
        return SlaSettings(
            monitoring_window_p1=self.monitoring_window.p1,
            monitoring_window_p2=self.monitoring_window.p2,
            first_response=self.first_response,
            unassigned_after=self.unassigned_after,
            reminder_after=self.waiting_customer.reminder_after,
            close_after=self.waiting_customer.close_after,
            auto_close_recheck=self.waiting_customer.recheck,
            ttr={
                CasePriority.P1: self.ttr.p1,
                CasePriority.P2: self.ttr.p2,
                CasePriority.P3: self.ttr.p3,
            },
            dispatch_notice=self.dispatch_notice,
            calendars={name: c.calendar(name) for name, c in self.calendars.items()},
            business_hours={
                priority: None if name == ALWAYS else name
                for priority, name in (
                    (CasePriority.P1, self.business_hours.p1),
                    (CasePriority.P2, self.business_hours.p2),
                    (CasePriority.P3, self.business_hours.p3),
                )
            },
        )


#: The SLA of ``CaseSettings()``: what a service built without settings applies.
DEFAULT_SLA = CaseSettings().sla()
#: ``cases.at_risk_within`` of ``CaseSettings()``.
DEFAULT_AT_RISK_WITHIN = CaseSettings().at_risk_within
