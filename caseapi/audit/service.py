"""Recording actions in the audit log, reading it, and purging it after the retention.

``record`` is the one way a row is written. The service that performs an action
calls it inside the action's own write transaction, once, with what it knows (the
action, the target, a few details); the actor, the client's address and the request
id come from the request's origin (``caseapi.audit.context``). So a change that
commits has its row and one that rolls back has none. For an action that writes
nothing else (a report export), ``record_action`` opens the transaction itself.

``details`` hold facts, not content: from/to statuses, the names of the fields
changed, kinds and counts. Never a secret, a URL, a comment body or other free text.

Who is recorded: every caller of a state-changing operation of the API (staff,
admins, customers and ``service`` keys alike: one rule, no role to forget) and the
``nms apikey`` commands. The detector and the timers are not: what they do is on
the cases' timelines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, Final, TypeAlias

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.audit import repository
from caseapi.audit.context import current_origin
from caseapi.audit.enums import AuditAction, AuditOutcome, AuditTarget
from caseapi.audit.models import AuditEvent
from caseapi.audit.repository import AuditFilters
from caseapi.cases import paging
from caseapi.clock import Clock
from caseapi.core.database import session_scope

MAX_PAGE_SIZE: Final = paging.MAX_PAGE_SIZE
#: Rows deleted per purge transaction: keeps SQLite's single write lock short.
PURGE_BATCH: Final = 1000
#: ``details`` are a few facts; anything larger is a programming error, not data.
MAX_DETAILS_BYTES: Final = 2048


def target_of(action: AuditAction) -> AuditTarget:
    """The kind of object ``action`` is about: the first part of its dotted name."""
    return AuditTarget(action.value.split(".", 1)[0])


def _jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items) if isinstance(value, set | frozenset) else items
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"audit details hold plain values, not {type(value).__name__}")


async def record(
    session: AsyncSession,
    action: AuditAction,
    *,
    at: datetime,
    target_id: str | int | None,
    customer_id: str | None = None,
    details: Mapping[str, Any] | None = None,
    outcome: AuditOutcome = AuditOutcome.SUCCESS,
) -> AuditEvent:
    """Append the audit row of ``action`` in the caller's (write) transaction.

    Args:
        session: The session of the action's own transaction.
        action: What was done.
        at: When (the acting service's clock).
        target_id: The object it was done to (a case reference, a key id, ...).
        customer_id: The customer the target belongs to; a customer key's own
            customer when omitted.
        details: A few facts, no free text (see the module docstring).
        outcome: ``unchanged`` when the action was accepted but changed nothing.

    Raises:
        TypeError: ``details`` hold something that is not a plain value.
        ValueError: ``details`` are larger than ``MAX_DETAILS_BYTES``.
    """
    origin = current_origin()
    actor = origin.actor
    data = _jsonable(dict(details or {}))
    if len(json.dumps(data)) > MAX_DETAILS_BYTES:
        raise ValueError(f"audit details of {action} exceed {MAX_DETAILS_BYTES} bytes")
    event = AuditEvent(
        at=at,
        actor_kind=actor.kind.value,
        actor=actor.name,
        actor_id=actor.id,
        actor_key_prefix=actor.key_prefix,
        actor_role=actor.role,
        customer_id=customer_id if customer_id is not None else actor.customer_id,
        action=action.value,
        target_type=target_of(action).value,
        target_id=str(target_id) if target_id is not None else None,
        client=origin.client,
        request_id=origin.request_id,
        outcome=outcome.value,
        details=data,
    )
    return await repository.add_event(session, event=event)


async def record_action(
    sessionmaker: async_sessionmaker[AsyncSession],
    action: AuditAction,
    *,
    at: datetime,
    target_id: str | int | None,
    customer_id: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """``record`` in a write transaction of its own, for an action that writes nothing
    else (``report.export``): call it once the action has succeeded."""
    async with session_scope(sessionmaker, write=True) as session:
        event = await record(
            session, action, at=at, target_id=target_id, customer_id=customer_id, details=details
        )
        await session.commit()
        return event


#: One page of the audit log.
AuditPage: TypeAlias = paging.Page[AuditEvent]


class AuditService:
    """Reads the audit log and purges it after the retention."""

    def __init__(self, *, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        """Create the service.

        Args:
            sessionmaker: Session factory of the case database.
            clock: Source of "now" for the purge.
        """
        self._sessionmaker = sessionmaker
        self._clock = clock

    async def list_events(
        self, *, filters: AuditFilters, cursor: str | None = None, limit: int = 50
    ) -> AuditPage:
        """One page of rows matching ``filters``, newest first.

        Raises:
            InvalidCursorError: ``cursor`` was not issued by this service.
            CursorFiltersChangedError: ``cursor`` was issued for other ``filters``.
        """
        return await paging.page(
            self._sessionmaker,
            filters=filters,
            cursor=cursor,
            limit=limit,
            fetch=repository.list_events,
            count=repository.count_events,
        )

    async def purge(self, *, retention: timedelta, now: datetime | None = None) -> int:
        """Delete the rows older than ``retention`` at ``now``; return how many.

        Raises:
            ValueError: ``retention`` is not positive.
            DatabaseUnavailableError: The database cannot be reached.
        """
        if retention <= timedelta(0):
            raise ValueError("retention must be positive")
        cutoff = (now or self._clock.now()) - retention
        async with session_scope(self._sessionmaker) as session:
            if not await repository.any_before(session, cutoff=cutoff):
                return 0  # the usual case: no write transaction at all
        purged = 0
        while True:
            async with session_scope(self._sessionmaker, write=True) as session:
                count = await repository.purge_before(session, cutoff=cutoff, limit=PURGE_BATCH)
                await session.commit()
            purged += count
            if count < PURGE_BATCH:
                return purged
