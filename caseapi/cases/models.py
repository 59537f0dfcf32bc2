"""Cases and their timeline.

``cases.ntu_id`` and ``cases.customer_id`` deliberately carry no foreign key: the
inventory owns ``ntus`` and ``customers`` and may drop a row that old cases still
name, and a case must outlive its NTU (like ``ntu_states`` does).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from caseapi.cases.enums import (
    TERMINAL_STATUSES,
    CaseEventKind,
    CasePriority,
    CaseSource,
    CaseStatus,
    CaseSubject,
    CaseType,
    CommitmentKind,
    EscalationLevel,
    NotificationKind,
    RootCauseCategory,
)
from caseapi.core.base import ACTOR_LENGTH, Base, UTCDateTime
from caseapi.core.counters import YearCounter

# Stored as VARCHAR without a CHECK constraint, so adding a member to an enum needs no
# migration (SQLite cannot alter a CHECK constraint in place).
_ENUM_LENGTH = 32


def _str_enum(enum: type[Any]) -> Enum:
    return Enum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=_ENUM_LENGTH,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


_TERMINAL_SQL = ", ".join(f"'{status.value}'" for status in sorted(TERMINAL_STATUSES))
#: The predicate of the partial unique index: "the case is still open".
OPEN_CASE_PREDICATE = f"status NOT IN ({_TERMINAL_SQL})"


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(32), unique=True)
    type: Mapped[CaseType] = mapped_column(_str_enum(CaseType))
    priority: Mapped[CasePriority] = mapped_column(_str_enum(CasePriority), index=True)
    status: Mapped[CaseStatus] = mapped_column(_str_enum(CaseStatus), index=True)
    source: Mapped[CaseSource] = mapped_column(_str_enum(CaseSource))
    dedup_key: Mapped[str | None] = mapped_column(String(200))
    ntu_id: Mapped[str | None] = mapped_column(String(64), index=True)
    customer_id: Mapped[str | None] = mapped_column(String(64), index=True)
    service_id: Mapped[str | None] = mapped_column(String(64))
    site: Mapped[str | None] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text)
    outage_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    detected_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    restored_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    solved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    monitoring_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reopen_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    recurrence_of: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    no_support: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    #: Indexed for the ``created_since`` / ``created_before`` filters (revision 0012).
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)

    # -- lifecycle (revision 0002) -------------------------------------------------
    #: Bumped on every change; the API's ETag, checked against ``If-Match``.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    subject: Mapped[CaseSubject | None] = mapped_column(_str_enum(CaseSubject))
    suggested_priority: Mapped[CasePriority | None] = mapped_column(_str_enum(CasePriority))
    description: Mapped[str | None] = mapped_column(Text)
    requested_date: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by: Mapped[str | None] = mapped_column(String(ACTOR_LENGTH))
    assignee: Mapped[str | None] = mapped_column(String(ACTOR_LENGTH), index=True)
    escalation_level: Mapped[EscalationLevel] = mapped_column(
        _str_enum(EscalationLevel), default=EscalationLevel.L1, server_default=text("'L1'")
    )
    first_response_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    first_responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    first_response_breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    unassigned_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    unassigned_flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ttr_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ttr_breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Set while waiting on the customer: the repair clock is stopped since then.
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    waiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reminder_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    auto_close_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    auto_close_held_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: First publication of the RFO (set by the RFO module through the service).
    rfo_published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution_method: Mapped[str | None] = mapped_column(String(64))
    root_cause_category: Mapped[RootCauseCategory | None] = mapped_column(
        _str_enum(RootCauseCategory)
    )
    resolution: Mapped[str | None] = mapped_column(Text)
    #: The earliest deadline the ticker must act on (``lifecycle.next_due_at``).
    next_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)

    # -- topology (revision 0008) ---------------------------------------------------
    #: An upstream incident this case is linked to (an affected customer's case, or
    #: an NTU's own case opened after the upstream outage ended).
    parent_case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    #: On an upstream incident: the affected NTUs, ``[{"ntu": id, "customer": id}]``.
    affected: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)

    # -- restoration estimate (revision 0011) ---------------------------------------
    #: The estimated time of restoration support gave the customer (``None``: none).
    etr: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # -- support organisation (revision 0023) ---------------------------------------
    #: The team working the case: routed at creation, changed by a forward. Internal.
    #: No foreign key (revision 0023 says why); teams are never deleted.
    team_id: Mapped[str | None] = mapped_column(String(64), index=True)

    # The closed case this one recurs; loaded explicitly (selectinload) when needed.
    previous_case: Mapped[Case | None] = relationship(
        remote_side=lambda: [Case.id], foreign_keys=lambda: [Case.recurrence_of], lazy="raise"
    )

    __table_args__ = (
        # Architecture rule 3: at most one open case per dedup key, enforced here so
        # that two detectors (or two retries) racing cannot both create one.
        Index(
            "ux_cases_open_dedup_key",
            "dedup_key",
            unique=True,
            sqlite_where=text(OPEN_CASE_PREDICATE),
            postgresql_where=text(OPEN_CASE_PREDICATE),
        ),
        # Finding the last case for a key (recurrence_of) regardless of status.
        Index("ix_cases_dedup_key_id", "dedup_key", "id"),
    )


class CaseEvent(Base):
    """One timeline entry; written for every change to a case."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[CaseEventKind] = mapped_column(_str_enum(CaseEventKind))
    actor: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_case_events_case_id_id", "case_id", "id"),)


class CaseRefCounter(YearCounter, Base):
    """The last case-reference sequence number handed out per year
    (``caseapi.core.counters``)."""

    __tablename__ = "case_ref_counters"


class CaseCommitment(Base):
    """A promise made on a case ("next update in 30 min", "engineer on site by 14:00")."""

    __tablename__ = "case_commitments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[CommitmentKind] = mapped_column(_str_enum(CommitmentKind))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    note: Mapped[str] = mapped_column(Text, default="")
    set_by: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    met_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    missed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CaseNotification(Base):
    """Outbox row for the notification dispatcher (a later issue sends them)."""

    __tablename__ = "case_notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[NotificationKind] = mapped_column(_str_enum(NotificationKind))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CaseIdempotencyKey(Base):
    """An ``Idempotency-Key`` seen on a create, scoped to the caller.

    ``request_hash`` (SHA-256 of the canonical body) tells a retry from a reuse.
    """

    __tablename__ = "case_idempotency_keys"

    scope: Mapped[str] = mapped_column(String(ACTOR_LENGTH), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
