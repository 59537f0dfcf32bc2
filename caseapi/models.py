"""Every table of the case service, in one import.

Importing this module registers all models on ``Base.metadata``: the schema
comparison test, the test database fixtures and tools that need the whole schema
import it. A domain that adds a models module adds it here.
"""

from __future__ import annotations

import caseapi.maintenance.models  # noqa: F401  (registers the maintenance tables)
from caseapi.attachments.models import Attachment
from caseapi.audit.models import AuditEvent, AuditPurge
from caseapi.auth.models import ApiKey
from caseapi.cases.models import Case, CaseEvent, CaseRefCounter
from caseapi.comments.models import Comment
from caseapi.core.base import Base
from caseapi.customers.models import Customer, CustomerContact
from caseapi.mail.inbound import InboundMail
from caseapi.mail.models import MailMessage
from caseapi.notifications import models as _notifications  # noqa: F401  (registers tables)
from caseapi.ntus.models import Ntu, NtuState
from caseapi.oncall.models import (
    EscalationTierRow,
    OncallOverrideRow,
    OncallRotationRow,
    StaffAlert,
)
from caseapi.replies.models import CannedReply
from caseapi.reports.models import OutageInterval
from caseapi.rfo.models import RfoVersion
from caseapi.teams.models import Member, RoutingRuleRow, Team, TeamMember
from caseapi.users.models import User, UserSession

__all__ = [
    "ApiKey",
    "Attachment",
    "AuditEvent",
    "AuditPurge",
    "Base",
    "CannedReply",
    "Case",
    "CaseEvent",
    "CaseRefCounter",
    "Comment",
    "Customer",
    "CustomerContact",
    "EscalationTierRow",
    "InboundMail",
    "MailMessage",
    "Member",
    "Ntu",
    "NtuState",
    "OncallOverrideRow",
    "OncallRotationRow",
    "OutageInterval",
    "RfoVersion",
    "RoutingRuleRow",
    "StaffAlert",
    "Team",
    "TeamMember",
    "User",
    "UserSession",
]
