"""SLA settings and the per-case ``SlaPolicy`` built from them and the inventory.

The defaults (DOMAIN.md's) are ``caseapi.cases.config.CaseSettings``'s. A contract
overrides them through ``customers.attributes`` and a service order through
``ntus.attributes`` (durations as ``30m``, ``2h``, ``4d``):

- ``customers.attributes.first_response``: first-response target (default 30 min).
- ``customers.attributes.waiting_customer_close_after``: auto-close after this long
  waiting on the customer (default 4 days; 25 days is another common contract).
- ``customers.attributes.waiting_customer_reminder_after``: reminder (default 2 days).
- ``customers.attributes.calendar``: the business-hours calendar (a name from
  ``cases.calendars``, or ``24x7``) of the contract's first response, unassigned flag
  and time to repair, for every priority; ``calendar_p1`` / ``calendar_p2`` /
  ``calendar_p3`` set one priority's (and win over ``calendar``). Without them each
  priority keeps ``cases.business_hours`` (default: 24x7).
- ``ntus.attributes.ttr``: time to repair of the service, either one duration for
  every incident priority or a mapping ``{"P1": "4h", "P2": "8h"}``. Without it the
  defaults are P1 4 h, P2 8 h and no repair target for P3 requests.
- ``ntus.attributes.ttr_site`` / ``ttr_service`` (same forms): the time to repair of
  the NTU's site and service, written by the inventory sync from the inventory's
  ``sites`` and ``services`` (the support process: the target is unique to location
  and service). Precedence, per priority: service > site > the NTU's ``ttr`` >
  ``cases.ttr``.

A malformed attribute falls back to the default (and is logged): a typo in the
inventory must not stop cases from being opened.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from caseapi.cases.calendar import Calendar
from caseapi.cases.enums import CasePriority
from caseapi.cases.snapshot import SlaPolicy
from caseapi.core.durations import parse_duration

logger = logging.getLogger(__name__)

#: The calendar name that means "no calendar": the clock runs around the clock.
ALWAYS: Final = "24x7"


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaSettings:
    """Service-wide SLA durations, from ``CaseSettings.sla()`` (which owns the defaults).

    ``ttr`` maps a priority to its time to repair (``None``: no repair target).
    """

    monitoring_window_p1: timedelta
    monitoring_window_p2: timedelta
    first_response: timedelta
    unassigned_after: timedelta
    reminder_after: timedelta
    close_after: timedelta
    auto_close_recheck: timedelta
    ttr: Mapping[CasePriority, timedelta | None]
    #: An engineer dispatch must be requested at least this far ahead.
    dispatch_notice: timedelta
    #: The configured business-hours calendars by name.
    calendars: Mapping[str, Calendar] = field(default_factory=dict)
    #: The calendar name each priority's clocks run on by default (absent: 24x7).
    business_hours: Mapping[CasePriority, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in (
            "monitoring_window_p1",
            "monitoring_window_p2",
            "first_response",
            "unassigned_after",
            "reminder_after",
            "close_after",
            "auto_close_recheck",
        ):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.dispatch_notice < timedelta(0):
            raise ValueError("dispatch_notice must not be negative")
        for priority, calendar in self.business_hours.items():
            if calendar is not None and calendar not in self.calendars:
                raise ValueError(
                    f"business_hours.{priority.value.lower()}: no calendar {calendar!r}"
                )

    def policy(
        self,
        *,
        customer_attributes: Mapping[str, Any] | None = None,
        ntu_attributes: Mapping[str, Any] | None = None,
    ) -> SlaPolicy:
        """The policy for one case of this customer on this NTU."""
        customer = customer_attributes or {}
        ntu = ntu_attributes or {}
        return SlaPolicy(
            monitoring_window={
                CasePriority.P1: self.monitoring_window_p1,
                CasePriority.P2: self.monitoring_window_p2,
                # P3 requests are watched like P2 incidents (the foundation's choice).
                CasePriority.P3: self.monitoring_window_p2,
            },
            # Lowest precedence first: each later source overrides what it sets.
            ttr=_ttr(
                _ttr(_ttr(self.ttr, ntu.get("ttr")), ntu.get("ttr_site")),
                ntu.get("ttr_service"),
            ),
            first_response=_duration(customer, "first_response", self.first_response),
            unassigned_after=self.unassigned_after,
            reminder_after=_duration(
                customer, "waiting_customer_reminder_after", self.reminder_after
            ),
            close_after=_duration(customer, "waiting_customer_close_after", self.close_after),
            auto_close_recheck=self.auto_close_recheck,
            calendars=self._calendars(customer),
        )

    def _calendars(self, customer: Mapping[str, Any]) -> dict[CasePriority, Calendar | None]:
        calendars: dict[CasePriority, Calendar | None] = {}
        for priority in CasePriority:
            name = self.business_hours.get(priority)
            for key in ("calendar", f"calendar_{priority.value.lower()}"):
                value = customer.get(key)
                if value is None:
                    continue
                if value == ALWAYS or value in self.calendars:
                    name = None if value == ALWAYS else str(value)
                else:
                    logger.warning("ignoring attribute %s=%r: no such calendar", key, value)
            calendars[priority] = None if name is None else self.calendars[name]
        return calendars


def _duration(attributes: Mapping[str, Any], key: str, default: timedelta) -> timedelta:
    value = attributes.get(key)
    if value is None:
        return default
    try:
        parsed = parse_duration(value)
    except ValueError as exc:
        logger.warning("ignoring attribute %s=%r: %s", key, value, exc)
        return default
    if parsed <= timedelta(0):
        logger.warning("ignoring attribute %s=%r: not positive", key, value)
        return default
    return parsed


def _ttr(
    defaults: Mapping[CasePriority, timedelta | None], value: object
) -> dict[CasePriority, timedelta | None]:
    ttr = dict(defaults)
    if value is None:
        return ttr
    if isinstance(value, Mapping):
        overrides = {p: value.get(p.value) for p in CasePriority if p.value in value}
    else:
        # One duration: the service order's repair time, for incidents (P1 and P2).
        overrides = {CasePriority.P1: value, CasePriority.P2: value}
    for priority, raw in overrides.items():
        parsed = _duration({"ttr": raw}, "ttr", timedelta(0))
        if parsed > timedelta(0):
            ttr[priority] = parsed
    return ttr
