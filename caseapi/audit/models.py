"""The audit log: one row per staff, admin or customer action, never changed.

``audit_events`` is append-only. Migration 0015 installs triggers (SQLite and
PostgreSQL) that refuse every UPDATE, and every DELETE except the retention purge's:
a DELETE passes only for a row older than a cutoff written to ``audit_purge`` in the
same transaction. The purge (``caseapi.audit.repository.purge_before``) writes that
permit, deletes, and removes the permit before it commits, so no other transaction
ever sees one (SQLite has one writer at a time; PostgreSQL shows no uncommitted row
to others). The same mechanism on both backends, plain SQL, no session variables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from caseapi.core.base import ACTOR_LENGTH, Base, UTCDateTime


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    #: ``ActorKind``: ``api_key``, ``cli`` or ``system``.
    actor_kind: Mapped[str] = mapped_column(String(16))
    #: As timelines show it: ``engineer:alice`` (``Principal.actor``), ``cli:root``, ``system``.
    actor: Mapped[str] = mapped_column(String(ACTOR_LENGTH), index=True)
    #: The API key's id, or the operating-system user at the command line.
    actor_id: Mapped[str | None] = mapped_column(String(64))
    #: The API key's public prefix (``nms_`` + 8 characters), as key listings show it.
    actor_key_prefix: Mapped[str | None] = mapped_column(String(16))
    actor_role: Mapped[str | None] = mapped_column(String(16))
    #: The customer the action concerns: a customer key's own, or the target's owner.
    customer_id: Mapped[str | None] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(128))
    #: The client's address as the server saw it, ``cli`` for the command line.
    client: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))
    #: A few facts about the change (from/to, names of changed fields); never a
    #: secret, a comment body or other free text.
    details: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (Index("ix_audit_events_target", "target_type", "target_id"),)


class AuditPurge(Base):
    """A purge permit: lives only inside the purge's own transaction (see above)."""

    __tablename__ = "audit_purge"

    purge_before: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
