"""``inbound_mails``: every mail the ingest received, once, with what became of it.

One row per arrival. ``dedup_key`` (SHA-256 of the Message-ID and the sender) is
unique: the same mail fetched from IMAP and piped in by the MTA, or fetched again
after a crash, is ingested once; later arrivals get a ``duplicate`` row with no key
(so IMAP knows their ``(mailbox, uid)`` at once). ``(mailbox, uid)`` is unique too
(``uid`` is ``NULL`` for ``nms mail deliver``; NULLs never collide). The row is
written in the transaction that stores what the mail did (case, comment, outbox,
audit): all of it commits or none.

``raw`` is kept only for mails held for staff (bounded by ``mail.max_size``; of a
larger mail, its headers and first KB).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from caseapi.core.base import ACTOR_LENGTH, Base, UTCDateTime

#: RFC 5322 caps a header line at 998 characters.
HEADER_LENGTH = 998
#: RFC 5321: a path (address) is at most 256 octets.
ADDRESS_LENGTH = 320
MAILBOX_LENGTH = 200


class InboundStatus(StrEnum):
    """What became of a mail; ``held`` ones wait for staff (``released``/``discarded``)."""

    INGESTED = "ingested"
    HELD = "held"
    IGNORED = "ignored"
    REFUSED = "refused"
    DUPLICATE = "duplicate"
    RELEASED = "released"
    DISCARDED = "discarded"


class InboundMail(Base):
    """One received mail and its outcome."""

    __tablename__ = "inbound_mails"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Where it came from: the IMAP mailbox, or ``deliver`` for the MTA pipe.
    mailbox: Mapped[str] = mapped_column(String(MAILBOX_LENGTH))
    uid: Mapped[int | None] = mapped_column(BigInteger)
    #: ``<...>``; synthesized (``<sha256@inbound.invalid>``) when the mail had none.
    message_id: Mapped[str] = mapped_column(String(HEADER_LENGTH))
    #: SHA-256 of message id and sender; ``NULL`` on duplicate rows.
    dedup_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    #: SHA-256 of the raw bytes as received.
    sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sender: Mapped[str] = mapped_column(String(ADDRESS_LENGTH))
    subject: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(String(40))
    #: For staff: why it was held, which attachments were not stored, ...
    note: Mapped[str | None] = mapped_column(Text)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    comment_id: Mapped[int | None] = mapped_column(Integer)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: Set when staff released or discarded a held mail.
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_by: Mapped[str | None] = mapped_column(String(ACTOR_LENGTH))

    __table_args__ = (
        UniqueConstraint("mailbox", "uid"),
        # The per-sender rate limit counts a sender's recent mails.
        Index("ix_inbound_mails_sender_received", "sender", "received_at"),
    )
