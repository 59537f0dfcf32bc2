"""Canned replies: staff-maintained texts with ``${placeholders}`` for a case's fields.

A deleted reply keeps its row (``deleted_at``): the shipped examples are installed
once by ``shipped_key``, so one deleted by staff does not come back at the next start.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from caseapi.core.base import ACTOR_LENGTH, Base, UTCDateTime


class CannedReply(Base):
    __tablename__ = "canned_replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(16))
    #: ``public`` (sent as a public comment) or ``internal`` (an internal note).
    visibility: Mapped[str] = mapped_column(String(16))
    #: The shipped example it was installed from (``contract_blocked.en``), if any.
    shipped_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: ``Principal.actor`` of the last writer; ``system`` for a shipped example.
    updated_by: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
