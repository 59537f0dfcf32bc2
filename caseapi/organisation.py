"""Public: how the support organisation file gets into the case service's tables.

``nms`` reads and validates the organisation file, turns it into these records and
calls ``sync_organisation`` (one transaction; ``also`` adds other sections' writes,
e.g. on-call rotations). The vocabularies a file may use are named here too, and
the ``oncall`` / ``escalation`` sections' parser (``parse_oncall_sections``: pure,
file/line/field problems) and writers (``replace_rotations``, ``replace_tiers``).
"""

from __future__ import annotations

from typing import Final

from caseapi.cases.enums import CasePriority, CaseSource, CaseSubject, CaseType
from caseapi.oncall.spec import OncallModel, TeamFacts
from caseapi.oncall.spec import parse_sections as parse_oncall_sections
from caseapi.oncall.store import replace_rotations, replace_tiers
from caseapi.teams.routing import FACTS
from caseapi.teams.sync import (
    EXPERTISE_KEYS,
    TEAM_LEVELS,
    MemberRecord,
    OrganisationDiff,
    OrganisationWrite,
    RuleRecord,
    TeamRecord,
    check_records,
    sync_organisation,
)

#: The values each routing fact may take where the case service has a vocabulary.
FACT_VALUES: Final[dict[str, frozenset[str]]] = {
    "source": frozenset(s.value for s in CaseSource),
    "priority": frozenset(p.value for p in CasePriority),
    "type": frozenset(t.value for t in CaseType),
    "subject": frozenset(s.value for s in CaseSubject),
}

__all__ = [
    "EXPERTISE_KEYS",
    "FACTS",
    "FACT_VALUES",
    "TEAM_LEVELS",
    "MemberRecord",
    "OncallModel",
    "OrganisationDiff",
    "OrganisationWrite",
    "RuleRecord",
    "TeamFacts",
    "TeamRecord",
    "check_records",
    "parse_oncall_sections",
    "replace_rotations",
    "replace_tiers",
    "sync_organisation",
]
