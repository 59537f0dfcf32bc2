"""What the audit log records of people's work on a case (``caseapi.audit``).

One table from lifecycle request to audit action, and the facts kept of it: the
statuses, priorities, levels or assignees before and after, and the names of the
case fields that changed. Never a reason, a note, a summary or other free text.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.audit import service as audit
from caseapi.audit.enums import AuditAction, AuditOutcome
from caseapi.auth.principal import Principal
from caseapi.cases.models import Case
from caseapi.cases.snapshot import (
    Assign,
    Cancel,
    CaseSnapshot,
    ChangePriority,
    CustomerReply,
    Escalate,
    Event,
    HandOff,
    MeetCommitment,
    Outcome,
    Reclassify,
    Reopen,
    SetCommitment,
    SetEtr,
    Transition,
)

#: The case columns a request may change (the lifecycle's snapshot, less commitments).
_FIELDS: Final = tuple(f.name for f in fields(CaseSnapshot) if f.name != "commitments")

#: Request type -> action. ``Assign`` to oneself is ``case.take`` (see ``action_of``).
ACTIONS: Final[dict[type, AuditAction]] = {
    Transition: AuditAction.CASE_TRANSITION,
    ChangePriority: AuditAction.CASE_PRIORITY,
    Assign: AuditAction.CASE_ASSIGN,
    HandOff: AuditAction.CASE_HANDOFF,
    Reclassify: AuditAction.CASE_CLASSIFY,
    Escalate: AuditAction.CASE_ESCALATE,
    SetCommitment: AuditAction.CASE_COMMITMENT_SET,
    MeetCommitment: AuditAction.CASE_COMMITMENT_MET,
    SetEtr: AuditAction.CASE_ETR,
    Reopen: AuditAction.CASE_REOPEN,
    Cancel: AuditAction.CASE_CANCEL,
    CustomerReply: AuditAction.CASE_REPLY,
}


def action_of(event: Event, principal: Principal) -> AuditAction:
    """The audit action of ``principal``'s request ``event``.

    Raises:
        KeyError: A request type with no action (a new one must be added to ``ACTIONS``).
    """
    if isinstance(event, Assign) and event.assignee == principal.name:
        return AuditAction.CASE_TAKE
    if isinstance(event, HandOff) and event.team is not None:
        return AuditAction.CASE_FORWARD
    return ACTIONS[type(event)]


def values_of(case: Case) -> dict[str, Any]:
    """The values of ``case``'s fields that requests change (to compare before/after)."""
    return {name: getattr(case, name) for name in _FIELDS}


def _facts(event: Event) -> dict[str, Any]:
    if isinstance(event, SetCommitment):
        return {"kind": event.commitment.kind, "due_at": event.commitment.due_at}
    if isinstance(event, MeetCommitment):
        return {"commitment_id": event.commitment_id}
    if isinstance(event, SetEtr):
        return {"etr": event.etr}
    if isinstance(event, HandOff):
        return {"to_level": event.to_level, "team": event.team}
    if isinstance(event, Escalate | Cancel):
        return {"by_customer": event.by_customer}
    if isinstance(event, Transition) and event.merged_into is not None:
        return {"merged_into": event.merged_into}
    return {}


def details(event: Event, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What the audit row says of ``event``: changed field names, from/to of the key
    ones, and the event's own facts."""
    changed = sorted(name for name in _FIELDS if before[name] != after[name])
    data: dict[str, Any] = {"changed": changed}
    for name in (
        "status",
        "priority",
        "escalation_level",
        "assignee",
        "team_id",
        "type",
        "subject",
    ):
        if name in changed:
            data[name] = {"from": before[name], "to": after[name]}
    return data | _facts(event)


async def record_request(
    session: AsyncSession,
    principal: Principal,
    case: Case,
    event: Event,
    *,
    before: dict[str, Any],
    outcome: Outcome,
    at: datetime,
    linked: int = 0,
) -> None:
    """Record ``principal``'s ``event`` on ``case`` in the caller's transaction
    (``linked``: how many linked customer cases it was copied to)."""
    data = details(event, before, values_of(case))
    if linked:
        data["linked_cases"] = linked
    await audit.record(
        session,
        action_of(event, principal),
        at=at,
        target_id=case.ref,
        customer_id=case.customer_id,
        details=data,
        outcome=AuditOutcome.SUCCESS if outcome.changed else AuditOutcome.UNCHANGED,
    )
