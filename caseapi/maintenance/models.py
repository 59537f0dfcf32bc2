"""Maintenance windows and their reference counter.

The scope is stored as given (four JSON lists of ids) and resolved to NTUs when
read (``caseapi.maintenance.scope``): a window over a node or a customer follows the
inventory as it changes, as the people who announced it meant.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from caseapi.core.base import ACTOR_LENGTH, Base, UTCDateTime
from caseapi.core.counters import YearCounter


class MaintenanceWindow(Base):
    __tablename__ = "maintenance_windows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    #: ``MaintenanceKind`` value.
    kind: Mapped[str] = mapped_column(String(16))
    #: ``MaintenanceBehaviour`` value.
    behaviour: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    scope_ntus: Mapped[list[str]] = mapped_column(JSON)
    scope_nodes: Mapped[list[str]] = mapped_column(JSON)
    scope_customers: Mapped[list[str]] = mapped_column(JSON)
    scope_services: Mapped[list[str]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_by: Mapped[str | None] = mapped_column(String(ACTOR_LENGTH))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_by: Mapped[str | None] = mapped_column(String(ACTOR_LENGTH))
    actual_impact: Mapped[str | None] = mapped_column(Text)
    #: When the customers were told the work had started / was about to start
    #: (``caseapi.maintenance.notices.notify_due``); each notice goes out once.
    started_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Bumped on every change; the ``ETag`` is ``"v<version>"``.
    version: Mapped[int] = mapped_column(Integer)


class MaintenanceRefCounter(YearCounter, Base):
    """The last maintenance-reference sequence number handed out per year."""

    __tablename__ = "maintenance_ref_counters"
