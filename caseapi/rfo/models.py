"""RFO (reason for outage) versions of a case.

Version 1, 2, ... per case. At most the newest version is a draft (``published_at``
is null); publishing freezes it, with the generated ``facts`` (impact, timeline,
services) copied into the row, and a correction is a new version. Migration 0003
installs triggers that refuse UPDATE and DELETE of a published row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from caseapi.core.base import ACTOR_LENGTH, Base, UTCDateTime


class RfoVersion(Base):
    __tablename__ = "rfo_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    root_cause_category: Mapped[str | None] = mapped_column(String(32))
    root_cause: Mapped[str | None] = mapped_column(Text)
    corrective_actions: Mapped[str | None] = mapped_column(Text)
    preventive_actions: Mapped[str | None] = mapped_column(Text)
    #: Why no preventive action applies (set instead of ``preventive_actions``).
    preventive_not_applicable: Mapped[str | None] = mapped_column(Text)
    #: The generated part, frozen at publication (null while a draft: computed live).
    facts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    published_by: Mapped[str | None] = mapped_column(String(ACTOR_LENGTH))

    __table_args__ = (UniqueConstraint("case_id", "version"),)
