"""Attachments: a file stored with a case, maybe carried by a comment.

Rows are never updated or deleted (no such operation; migration 0020 installs
triggers that refuse both). ``internal`` follows the carrying comment's visibility,
or what staff chose for a file without one; customers never see internal ones.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from caseapi.core.base import ACTOR_LENGTH, Base, UTCDateTime

#: Sanitized names are at most 200 characters (``caseapi.attachments.names``).
FILENAME_LENGTH = 255
CONTENT_TYPE_LENGTH = 255


class AttachmentSource(StrEnum):
    """The channel a file came in by."""

    API = "api"
    EMAIL = "email"


class Storage(StrEnum):
    """Where the bytes are: in the row, or in a file of ``attachments.directory``."""

    DATABASE = "database"
    DIRECTORY = "directory"


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    comment_id: Mapped[int | None] = mapped_column(
        ForeignKey("comments.id", ondelete="CASCADE"), index=True
    )
    internal: Mapped[bool] = mapped_column(Boolean)
    filename: Mapped[str] = mapped_column(String(FILENAME_LENGTH))
    #: As declared, normalized; only ever served as such when on the safe list.
    content_type: Mapped[str] = mapped_column(String(CONTENT_TYPE_LENGTH))
    size: Mapped[int] = mapped_column(Integer)
    #: Hex digest of the bytes, checked again on every read.
    sha256: Mapped[str] = mapped_column(String(64))
    storage: Mapped[str] = mapped_column(String(16))
    #: The bytes when ``storage`` is ``database``.
    data: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    #: The file's name inside ``attachments.directory`` when ``storage`` is ``directory``.
    stored_name: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: ``Principal.actor`` of the uploader (``engineer:alice``), or the mail's channel actor.
    uploaded_by: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    source: Mapped[str] = mapped_column(String(16))

    __table_args__ = (Index("ix_attachments_case_id_id", "case_id", "id"),)
