"""The ``cases.*`` settings: the one place every case default is written.

``CaseSettings.sla()`` turns them into the ``SlaSettings`` the services and the
ticker apply; nothing else in the case service states a default duration.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import model_validator

from caseapi.cases.enums import CasePriority
from caseapi.cases.sla import SlaSettings
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


class CaseSettings(Section):
    monitoring_window: MonitoringWindowSettings = MonitoringWindowSettings()
    first_response: Duration = timedelta(minutes=30)
    """Per-contract override: a customer's ``attributes.first_response`` (e.g. 2h)."""
    unassigned_after: Duration = timedelta(hours=1)
    ttr: RepairTimeSettings = RepairTimeSettings()
    waiting_customer: WaitingCustomerSettings = WaitingCustomerSettings()
    dispatch_notice: Duration = timedelta(hours=24)
    ticker_interval: Duration = timedelta(seconds=30)
    """How often due case deadlines (SLA breaches, windows, reminders) are acted on."""

    @model_validator(mode="after")
    def _check(self) -> CaseSettings:
        for name in ("first_response", "unassigned_after", "ticker_interval"):
            positive(getattr(self, name))
        for window in (self.monitoring_window.p1, self.monitoring_window.p2):
            positive(window)
        w = self.waiting_customer
        for value in (w.reminder_after, w.close_after, w.recheck):
            positive(value)
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
        )


#: The SLA of ``CaseSettings()``: what a service built without settings applies.
DEFAULT_SLA = CaseSettings().sla()
