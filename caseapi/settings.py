"""The case service's settings: the sections it owns and the duration helpers.

Each section is a frozen pydantic model that forbids unknown keys, so an embedding
application composes them into its own settings under the keys ``cases``,
``notifications``, ``mail``, ``maintenance``, ``audit``, ``attachments``, ``database``,
``api.rate_limits`` and ``api.sessions``, and every default is written here once
(``CaseSettings.sla()``, ``NotificationSettings.dispatcher()`` derive what the services
apply). Durations
are text with a unit (``30s``, ``10m``, ``24h``).
"""

from __future__ import annotations

from caseapi.attachments.config import AttachmentSettings
from caseapi.audit.config import AuditSettings
from caseapi.cases.config import (
    CaseSettings,
    MonitoringWindowSettings,
    RepairTimeSettings,
    WaitingCustomerSettings,
)
from caseapi.cases.sla import SlaSettings
from caseapi.core.config import DEFAULT_MAX_BODY, DatabaseSettings, Section, check_mqtt_url
from caseapi.core.durations import Duration, format_duration, parse_duration, positive
from caseapi.mail.config import MailSettings
from caseapi.maintenance.config import MaintenanceSettings
from caseapi.notifications.config import NotificationSettings
from caseapi.notifications.settings import DispatcherSettings
from caseapi.ratelimit.config import RateLimitSettings
from caseapi.users.config import SessionSettings
from caseapi.web.noc.config import BoardSettings

__all__ = [
    "DEFAULT_MAX_BODY",
    "AttachmentSettings",
    "AuditSettings",
    "BoardSettings",
    "CaseSettings",
    "DatabaseSettings",
    "DispatcherSettings",
    "Duration",
    "MailSettings",
    "MaintenanceSettings",
    "MonitoringWindowSettings",
    "NotificationSettings",
    "RateLimitSettings",
    "RepairTimeSettings",
    "Section",
    "SessionSettings",
    "SlaSettings",
    "WaitingCustomerSettings",
    "check_mqtt_url",
    "format_duration",
    "parse_duration",
    "positive",
]
