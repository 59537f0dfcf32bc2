"""The pure parts of the mail ingest: its settings, limits, keys and texts.

``kept_bytes`` is what a too-large mail keeps; ``synthetic_message_id`` and
``dedup_key`` make every mail's unique key; ``body_of`` is what a mail adds to a case;
``mail_principal`` is who a mail acts as.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.auth.principal import Principal, Role
from caseapi.mail.config import MailSettings
from caseapi.mail.parse import ParsedMail

#: Of a mail over the size limit we keep its header block (up to this) ...
MAX_KEPT_HEADER: Final = 64 * 1024
#: ... and this much of its body, for staff to see what it was.
KEPT_BODY: Final = 1024
SUMMARY_LENGTH: Final = 200
DESCRIPTION_LENGTH: Final = 4000
COMMENT_LENGTH: Final = 20_000
NO_SUBJECT: Final = "(no subject)"
#: The domain of Message-IDs we make up for mails that came without one.
SYNTHETIC_DOMAIN: Final = "inbound.invalid"
_UNITS: Final = {
    "second": timedelta(seconds=1),
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}
#: Attachment refusals that skip the file, not the mail.
ATTACHMENT_LIMIT_CODES: Final = frozenset({"attachment_too_large", "too_many_attachments"})


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """What the ingest needs of the ``mail`` settings (``from_mail`` builds it)."""

    address: str = "support@localhost"
    #: More addresses our own mail comes from (``notifications.smtp_from``): a mail
    #: from any of them, or with ``X-Loop: <address>``, is a loop, never answered.
    own_addresses: frozenset[str] = frozenset()
    staff_addresses: frozenset[str] = frozenset()
    staff_domains: frozenset[str] = frozenset()
    max_size: int = 10 * 1024 * 1024
    rate_count: int = 20
    rate_window: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if self.max_size < 1024 or self.rate_count < 1 or self.rate_window <= timedelta(0):
            raise ValueError("max_size >= 1024, rate_count >= 1 and a positive rate_window")

    @classmethod
    def from_mail(cls, mail: MailSettings, *, also_ours: Iterable[str] = ()) -> IngestSettings:
        """The ingest's part of the ``mail`` settings section (``also_ours``: see
        ``own_addresses``)."""
        count, unit = mail.rate()
        return cls(
            address=mail.address,
            own_addresses=frozenset(a.strip().lower() for a in also_ours if a.strip()),
            staff_addresses=frozenset(mail.staff_addresses),
            staff_domains=frozenset(mail.staff_domains),
            max_size=int(mail.max_size),
            rate_count=count,
            rate_window=_UNITS[unit],
        )

    def is_staff(self, address: str) -> bool:
        key = address.strip().lower()
        return key in self.staff_addresses or key.rpartition("@")[2] in self.staff_domains


class AttachmentStore(Protocol):
    """``caseapi.attachments.service.AttachmentService.store``'s shape."""

    async def store(
        self,
        session: AsyncSession,
        *,
        case_id: int,
        comment_id: int | None,
        internal: bool,
        filename: str,
        content_type: str,
        data: bytes,
        actor: str,
    ) -> object: ...


def kept_bytes(raw: bytes, max_size: int) -> bytes:
    """``raw`` if it is within ``max_size``, else its header block and first KB."""
    if len(raw) <= max_size:
        return raw
    end = -1
    for separator in (b"\r\n\r\n", b"\n\n"):
        found = raw.find(separator, 0, MAX_KEPT_HEADER)
        if found != -1 and (end == -1 or found < end):
            end = found + len(separator)
    if end == -1:
        return raw[: MAX_KEPT_HEADER + KEPT_BODY]
    return raw[: end + KEPT_BODY]


def synthetic_message_id(parsed: ParsedMail | None, raw: bytes) -> str:
    """A stable Message-ID for a mail without one.

    Made from what does not change in transit (sender, date, subject, text,
    attachments, what a bounce reports), not the raw bytes: the MTA pipe and IMAP
    add different trace headers to one mail. Unreadable mail falls back to the raw bytes.
    """
    digest = hashlib.sha256()
    if parsed is None:
        digest.update(raw)
    else:
        date = parsed.date.isoformat() if parsed.date else ""
        for part in (parsed.sender, date, parsed.subject, ",".join(parsed.recipients), parsed.text):
            digest.update(part.encode("utf-8", "replace") + b"\0")
        for attachment in parsed.attachments:
            digest.update(hashlib.sha256(attachment.data).digest())
        if parsed.bounce is not None:  # two reports may differ only in what they report
            bounce = parsed.bounce
            facts = (*bounce.original_message_ids, *bounce.recipients, bounce.status or "")
            digest.update("\0".join(facts).encode("utf-8", "replace"))
    return f"<{digest.hexdigest()[:40]}@{SYNTHETIC_DOMAIN}>"


def dedup_key(message_id: str, sender: str) -> str:
    """The unique key of a mail: its Message-ID from its sender."""
    return hashlib.sha256(f"{message_id}\0{sender}".encode()).hexdigest()


def cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, saying where it was cut."""
    if len(text) <= limit:
        return text
    marker = f"\n[... cut at {limit} characters]"
    return text[: limit - len(marker)] + marker


def body_of(parsed: ParsedMail, *, limit: int = COMMENT_LENGTH) -> str:
    """The text a mail adds to a case: the reply without the quote, else all of it."""
    text = parsed.reply_text.strip() or parsed.text.strip() or "(empty message)"
    return cut(text, limit)


def mail_principal(sender: str, *, customer_id: str | None, staff: bool = False) -> Principal:
    """Who a mail acts as: its customer's contact, or staff (an engineer)."""
    name = sender[:240] or "unknown"
    if staff:
        return Principal(key_id=None, name=name, role=Role.ENGINEER)
    return Principal(key_id=None, name=name, role=Role.CUSTOMER, customer_id=customer_id)
