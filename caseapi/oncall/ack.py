"""Acknowledging a staff alert: by id (a staff API key) or by the link in the message.

The link is ``/v1/alerts/ack?token=<alert id>.<secret>``: 256 random bits made for
the step that was sent, of which only the SHA-256 is stored, so the link is bound to
its alert and step, cannot be guessed, and a leaked table acknowledges nothing. It
needs no login (the person on call reads it on a phone), works once (the alert is no
longer pending afterwards), stops working when the next step is sent (the new
person's link replaces it: 404 then) and after ``ACK_LINK_TTL``. Every acknowledgement writes
an ``alert.ack`` audit row in the same transaction.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.audit.enums import AuditAction
from caseapi.audit.service import record
from caseapi.clock import Clock
from caseapi.core.database import MAX_ID, session_scope
from caseapi.oncall import service
from caseapi.oncall.errors import AlertLinkExpiredError, AlertNotFoundError, AlertNotPendingError
from caseapi.oncall.models import StaffAlert

#: How long an ack link works after its step was sent.
ACK_LINK_TTL: Final = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class AckResult:
    """The acknowledged alert."""

    id: int
    case_id: int | None
    kind: str
    status: str
    acked_by: str
    acked_at: datetime


class AlertAckService:
    """Acknowledges staff alerts (the API's ``/v1/alerts`` routes)."""

    def __init__(self, *, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock

    async def ack_by_id(self, alert_id: int, *, actor: str) -> AckResult:
        """Acknowledge alert ``alert_id`` as ``actor`` (a staff member).

        Raises:
            AlertNotFoundError: No such alert.
            AlertNotPendingError: Acknowledged before, or nobody is alerted any more.
        """
        async with session_scope(self._sessionmaker, write=True) as session:
            alert = await _locked(session, alert_id)
            if alert is None:
                raise AlertNotFoundError(str(alert_id))
            return await self._ack(session, alert, actor=actor, via="api")

    async def ack_by_token(self, token: str) -> AckResult:
        """Acknowledge the alert a link's ``token`` was made for, as its recipient.

        Raises:
            AlertNotFoundError: Malformed, names no alert, or not the current step's
                secret (forged, or replaced when the next person was alerted).
            AlertLinkExpiredError: Older than ``ACK_LINK_TTL``.
            AlertNotPendingError: Used before, or the alert is no longer pending.
        """
        alert_part, sep, secret = token.partition(".")
        if not sep or not alert_part.isdigit() or not secret or len(alert_part) > 10:
            raise AlertNotFoundError("of this link")
        alert_id = int(alert_part)
        if alert_id > MAX_ID:
            raise AlertNotFoundError("of this link")
        async with session_scope(self._sessionmaker, write=True) as session:
            alert = await _locked(session, alert_id)
            if alert is None:
                raise AlertNotFoundError("of this link")
            if alert.status != "sending":
                raise AlertNotPendingError(alert.id, alert.status)
            stored = alert.ack_token_hash or ""
            if not hmac.compare_digest(stored, service.token_hash(secret)):
                # A forged link, or an earlier step's (only the current step's hash is
                # kept, so the two look alike): not a link of this alert.
                raise AlertNotFoundError("of this link")
            now = self._clock.now()
            if alert.sent_at is None or now - alert.sent_at > ACK_LINK_TTL:
                raise AlertLinkExpiredError(alert.id)
            return await self._ack(session, alert, actor=f"engineer:{alert.member_id}", via="link")

    async def _ack(
        self, session: AsyncSession, alert: StaffAlert, *, actor: str, via: str
    ) -> AckResult:
        now = self._clock.now()
        if not await service.acknowledge(session, alert, by=actor, now=now):
            raise AlertNotPendingError(alert.id, alert.status)
        await record(
            session,
            AuditAction.ALERT_ACK,
            at=now,
            target_id=alert.id,
            details={"via": via, "kind": alert.kind, "step": alert.step, "by": actor},
        )
        await session.commit()
        assert alert.acked_by is not None
        assert alert.acked_at is not None
        return AckResult(
            id=alert.id,
            case_id=alert.case_id,
            kind=alert.kind,
            status=alert.status,
            acked_by=alert.acked_by,
            acked_at=alert.acked_at,
        )


async def _locked(session: AsyncSession, alert_id: int) -> StaffAlert | None:
    stmt = select(StaffAlert).where(StaffAlert.id == alert_id).with_for_update()
    return (await session.scalars(stmt)).first()
