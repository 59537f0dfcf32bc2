"""Public: build the case service, its HTTP app and its background loops.

An embedding application (``nms``) supplies the database, a clock and the settings
sections, and gets back:

- ``build_services``: the case, incident and maintenance services, built once from
  the settings (``incidents`` is the detector's ``IncidentSink``);
- ``create_app``: the FastAPI app over those services;
- ``close_console``: ends the console's live streams when the server stops;
- ``configure_board``: the NOC board's settings and the probe shards it shows
  (``ProbeShard``, from a ``ProbeShards`` callable of the process running the probes);
- ``RateLimiter``: the API's rate limits (``api.rate_limits``), to pass to
  ``create_app``; its ``stats`` (``RateLimitStats``, by ``Limit``) are for metrics;
- ``CaseWorkers``: the loops the case side needs (case ticker, notification
  dispatcher, maintenance notices, the audit log's purge), run by one ``run()`` in a
  ``TaskGroup``, each waiting on the given clock.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.api.app import create_app
from caseapi.audit.config import AuditSettings
from caseapi.cases.config import CaseSettings
from caseapi.cases.incidents import IncidentService
from caseapi.cases.notices import import_reminders
from caseapi.cases.service import CaseService
from caseapi.cases.ticker import CaseTicker
from caseapi.clock import Clock
from caseapi.core.secrets import SecretBox
from caseapi.mail.config import MailSettings
from caseapi.maintenance.config import MaintenanceSettings
from caseapi.maintenance.service import MaintenanceService
from caseapi.notifications.config import NotificationSettings
from caseapi.notifications.dispatcher import NotificationDispatcher
from caseapi.oncall.service import configure as configure_alerts
from caseapi.ratelimit.service import Limit, RateLimiter, RateLimitStats
from caseapi.rfo.mail import RfoPdfAttachments
from caseapi.rfo.service import RfoService
from caseapi.web.noc.config import BoardSettings
from caseapi.web.noc.routes import close_feed
from caseapi.web.noc.shards import ProbeShard, ProbeShards

__all__ = [
    "CaseServices",
    "CaseWorkers",
    "Limit",
    "ProbeShard",
    "ProbeShards",
    "RateLimitStats",
    "RateLimiter",
    "build_services",
    "close_console",
    "configure_board",
    "create_app",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseServices:
    """The services of one case database, sharing one clock and one SLA."""

    cases: CaseService
    """People's work on cases and the case queries (the API's)."""
    incidents: IncidentService
    """The detector's calls (``caseapi.incidents.IncidentSink``)."""
    maintenance: MaintenanceService
    """Maintenance windows (the API's and the notice loop's)."""


def build_services(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Clock,
    cases: CaseSettings | None = None,
    maintenance: MaintenanceSettings | None = None,
) -> CaseServices:
    """Build the services from the ``cases.*`` and ``maintenance.*`` settings."""
    settings = cases or CaseSettings()
    sla = settings.sla()
    return CaseServices(
        cases=CaseService(
            sessionmaker=sessionmaker,
            clock=clock,
            sla=sla,
            at_risk_within=settings.at_risk_within,
        ),
        incidents=IncidentService(sessionmaker=sessionmaker, clock=clock, sla=sla),
        maintenance=MaintenanceService(
            sessionmaker=sessionmaker, clock=clock, settings=maintenance
        ),
    )


def configure_board(
    app: FastAPI, *, settings: BoardSettings, probe_shards: ProbeShards | None = None
) -> None:
    """Give the console's NOC board its ``board.*`` settings and, from the process that
    runs the probes, the probe shards it shows (``None``: not known to this process)."""
    app.state.board_settings = settings
    app.state.probe_shards = probe_shards
    app.state.shared_board = None  # made again with these settings


async def close_console(app: FastAPI) -> None:
    """End the console's live streams (``/events``) before the server stops: a server
    run without lifespan events would otherwise cancel them mid-response."""
    await close_feed(app)


class CaseWorkers:
    """The case side's background loops; run one set per database (several are safe).

    Every loop keeps its state in the database, so stopping (cancelling ``run``) at
    any moment loses nothing, and two sets share the work instead of doubling it.
    """

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        cases: CaseSettings | None = None,
        notifications: NotificationSettings | None = None,
        maintenance: MaintenanceSettings | None = None,
        audit: AuditSettings | None = None,
        secrets: SecretBox | None = None,
        mail: MailSettings | None = None,
    ) -> None:
        """Build the loops from the ``cases.*``, ``notifications.*``, ``mail.*``,
        ``maintenance.*`` and ``audit.*`` settings (the defaults where omitted);
        ``secrets`` opens the stored webhook secrets (``caseapi.secrets``).

        Raises:
            ValueError: Settings the dispatcher refuses.
        """
        cases = cases or CaseSettings()
        notifications = notifications or NotificationSettings()
        self._ticker_interval = cases.ticker_interval
        self._dispatch_interval = notifications.interval.total_seconds()
        self.ticker = CaseTicker(
            sessionmaker=sessionmaker,
            clock=clock,
            sla=cases.sla(),
            audit_retention=(audit or AuditSettings()).retention,
            at_risk_within=cases.at_risk_within,
        )
        # The ticker raises and re-notifies staff alerts here too (a process with no API).
        configure_alerts(notifications.staff_alert_config())
        self.dispatcher = (
            NotificationDispatcher(
                sessionmaker=sessionmaker,
                settings=notifications.dispatcher(),
                clock=clock,
                sources=(import_reminders,),
                attachments=(
                    (RfoPdfAttachments(service=RfoService(sessionmaker=sessionmaker, clock=clock)),)
                    if notifications.attach_rfo_pdf
                    else ()
                ),
                secrets=secrets,
                mail=mail,
            )
            if notifications.enabled
            else None
        )
        self.maintenance = MaintenanceService(
            sessionmaker=sessionmaker, clock=clock, settings=maintenance
        )

    async def run(self) -> None:
        """Run every loop until cancelled; each logs and retries its own failures."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.ticker.run(self._ticker_interval), name="case-ticker")
            if self.dispatcher is not None:
                tasks.create_task(
                    self.dispatcher.run(self._dispatch_interval), name="notifications"
                )
            tasks.create_task(self.maintenance.run_notices(), name="maintenance-notices")
