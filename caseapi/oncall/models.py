"""On-call tables: rotations and overrides, escalation tiers, and staff alerts.

The first three are the organisation file's ``oncall`` and ``escalation`` sections,
synced (replaced whole) on every load. ``staff_alerts`` is one row per alerted event:
``event_key`` is UNIQUE, so an event raised twice (a retried transaction, a second
process, a restart) alerts once; ``step`` is advanced with a conditional update in
the transaction that enqueues the step's message, so each step is sent once; and
``next_at`` is the stored absolute instant of the re-notify, so a restart loses no timer.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from caseapi.core.base import Base, UTCDateTime


class OncallRotationRow(Base):
    """One team's rotation (``handoff`` as written: ``mon 09:00`` or ``09:00``)."""

    __tablename__ = "oncall_rotations"

    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    timezone: Mapped[str] = mapped_column(String(64))
    handoff: Mapped[str] = mapped_column(String(16))
    start: Mapped[date] = mapped_column(Date)
    order: Mapped[list[str]] = mapped_column(JSON, default=list)
    ack_within_seconds: Mapped[int] = mapped_column(Integer)


class OncallOverrideRow(Base):
    """``member_id`` is on call for ``team_id`` over local ``[starts, ends)`` (ISO text)."""

    __tablename__ = "oncall_overrides"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(
        ForeignKey("oncall_rotations.team_id", ondelete="CASCADE"), index=True
    )
    member_id: Mapped[str] = mapped_column(String(64))
    starts_local: Mapped[str] = mapped_column(String(19))
    ends_local: Mapped[str] = mapped_column(String(19))


class EscalationTierRow(Base):
    """One tier's matrix: ``levels`` {L1: {team, contacts, management}}, ``notify_after``
    {L2: seconds}."""

    __tablename__ = "escalation_tiers"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    levels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    notify_after: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    customer_sees: Mapped[str] = mapped_column(String(24))


class StaffAlert(Base):
    """One alerted event and where its re-notify chain is (see the module docstring)."""

    __tablename__ = "staff_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_key: Mapped[str] = mapped_column(String(200), unique=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    step: Mapped[int] = mapped_column(Integer, default=0)
    member_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    ack_within_seconds: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acked_by: Mapped[str | None] = mapped_column(String(255))
    #: SHA-256 (hex) of the current step's ack-link secret; the link itself is never stored.
    ack_token_hash: Mapped[str | None] = mapped_column(String(64))
    #: What the wording of every step needs: the SLA clock (``first_response``,
    #: ``time_to_repair``, ``commitment``), its ``due_at``, a commitment's ``kind``,
    #: the missed deadlines of an escalation (``caseapi.oncall.wording``).
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
