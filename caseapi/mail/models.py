"""``mail_messages``: the Message-ID of every mail of a case, sent or received.

One row per Message-ID (unique): what the mail ingest matches a reply's
``In-Reply-To`` / ``References`` against (``case_for_message_ids``), and what every
mail we send threads to (``thread_headers``). Written by ``caseapi.mail.threading``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from caseapi.core.base import Base, UTCDateTime

#: RFC 5322 caps a header line at 998 characters; no Message-ID is longer.
MESSAGE_ID_LENGTH = 998


class MailMessage(Base):
    """A mail of a case: ``direction`` ``out`` (we sent it) or ``in`` (we received it)."""

    __tablename__ = "mail_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: ``<...>`` as it appears in the header.
    message_id: Mapped[str] = mapped_column(String(MESSAGE_ID_LENGTH), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
