"""Case comments: public (the customer sees them) or internal (support only).

Rows are never updated or deleted: the service has no such operation and migration
0003 installs database triggers that refuse UPDATE and DELETE on ``comments``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from caseapi.core.base import ACTOR_LENGTH, Base, UTCDateTime


class Visibility(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"


class Comment(Base):
    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: ``Principal.actor`` of the writer, e.g. ``engineer:alice``.
    author: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    author_role: Mapped[str] = mapped_column(String(16))
    visibility: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_comments_case_id_id", "case_id", "id"),)
