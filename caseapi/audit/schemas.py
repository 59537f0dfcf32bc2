"""HTTP shapes of the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from caseapi.audit.enums import ActorKind, AuditAction, AuditOutcome, AuditTarget
from caseapi.audit.models import AuditEvent


class AuditActorPublic(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: ActorKind
    name: str
    id: str | None
    key_prefix: str | None
    role: str | None


class AuditEventPublic(BaseModel):
    """One recorded action."""

    model_config = ConfigDict(frozen=True)

    id: int
    at: datetime
    actor: AuditActorPublic
    customer_id: str | None
    action: AuditAction
    target_type: AuditTarget
    target_id: str | None
    client: str | None
    request_id: str | None
    outcome: AuditOutcome
    details: dict[str, Any]

    @classmethod
    def from_event(cls, event: AuditEvent) -> AuditEventPublic:
        """Build from a row."""
        return cls(
            id=event.id,
            at=event.at,
            actor=AuditActorPublic(
                kind=ActorKind(event.actor_kind),
                name=event.actor,
                id=event.actor_id,
                key_prefix=event.actor_key_prefix,
                role=event.actor_role,
            ),
            customer_id=event.customer_id,
            action=AuditAction(event.action),
            target_type=AuditTarget(event.target_type),
            target_id=event.target_id,
            client=event.client,
            request_id=event.request_id,
            outcome=AuditOutcome(event.outcome),
            details=event.details,
        )


class AuditEventsPublic(BaseModel):
    """One page of the audit log, newest first."""

    data: list[AuditEventPublic]
    count: int
    next_cursor: str | None
