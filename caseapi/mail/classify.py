"""Who sent a mail: a person, an auto-responder, a list, ourselves, or a mail server.

The rules, first match wins (the order matters: our own mail must never be answered even
when it comes back as a bounce, and a bounce also carries ``Auto-Submitted``):

1. ``LOOP``: the ``X-Loop`` header carries our marker, or ``From`` is one of our addresses.
2. ``BOUNCE``: a ``multipart/report; report-type=delivery-status`` (RFC 3464) with at least
   one failed recipient, or a mailer-daemon/postmaster sender with the shape of a
   non-delivery report. The original Message-IDs come from the returned ``message/rfc822``
   or ``text/rfc822-headers`` part, ``Message-ID:`` lines quoted in the text, or
   ``In-Reply-To``/``References``.
3. ``AUTO_REPLY``: ``Auto-Submitted`` other than ``no`` (RFC 3834), ``Precedence: auto_reply``,
   ``X-Autoreply``, ``X-Autorespond``, ``X-Auto-Response-Suppress`` (Exchange), a null
   ``Return-Path``, a mailer-daemon that is not a failure (a delay warning), or a DSN whose
   recipients were only delayed.
4. ``BULK``: ``Precedence: bulk/list/junk`` or a list header (``List-Id``, ``List-Unsubscribe``).
5. ``HUMAN`` otherwise.

The header helpers here (raw values, Message-ID normalization) are shared with ``parse``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import getaddresses
from enum import StrEnum

_MAX_IDS = 100
_MAX_ID_LENGTH = 998  # RFC 5322 line limit; also the width of mail_messages.message_id
_COMMENT = re.compile(r"\([^()]*\)")
_BRACKETED = re.compile(r"<([^<>]*)>")
_DAEMONS = frozenset({"mailer-daemon", "mailer_daemon", "mailerdaemon", "postmaster"})
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (status notification|failure|has failed)|"
    r"failure notice|returned mail|mail delivery failed|non recapitabile|mancato recapito",
    re.IGNORECASE,
)
_QMAIL_RECIPIENT = re.compile(r"^<([^<>\s]+@[^<>\s]+)>:\s*$", re.MULTILINE)
_QUOTED_MESSAGE_ID = re.compile(r"^\s*Message-ID:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)


class AutoKind(StrEnum):
    """What kind of sender a mail came from; only ``HUMAN`` may get an automatic answer."""

    HUMAN = "human"
    AUTO_REPLY = "auto_reply"
    BULK = "bulk"
    LOOP = "loop"
    BOUNCE = "bounce"


@dataclass(frozen=True, slots=True)
class Bounce:
    """A non-delivery report: which of our messages failed, to whom, with which status.

    Attributes:
        original_message_ids: normalized ``<...>`` ids of the message that bounced.
        recipients: lower-cased addresses the report says failed (may be empty when the
            report is free text only).
        status: the RFC 3463 status of the first failed recipient (``"5.1.1"``), if given.
    """

    original_message_ids: tuple[str, ...]
    recipients: tuple[str, ...]
    status: str | None


def unicode_header(value: str) -> str:
    """Return a raw header value with 8-bit bytes decoded (UTF-8, else Windows-1252).

    ``BytesParser`` keeps undecodable 8-bit header bytes as lone surrogates; RFC 6532 allows
    UTF-8 there and older clients send their local charset.
    """
    if not any("\udc80" <= char <= "\udcff" for char in value):
        return value
    data = value.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def header_values(message: Message, name: str) -> list[str]:
    """Return every raw value of header ``name`` as text, never parsing its structure.

    ``raw_items`` bypasses the policy's structured header parsing, which is where odd
    headers raise; callers decode what they need with tolerant helpers.
    """
    wanted = name.lower()
    values: list[str] = []
    for key, value in message.raw_items():
        if key.lower() == wanted:
            text = value if isinstance(value, str) else str(value)
            values.append(unicode_header(text).replace("\r", "").replace("\n", ""))
    return values


def header_value(message: Message, name: str) -> str:
    """Return the first raw value of header ``name``, or ``""``."""
    values = header_values(message, name)
    return values[0].strip() if values else ""


def normalize_message_id(value: str) -> str | None:
    """Return one Message-ID as ``<id>`` with comments and whitespace removed, or None.

    Args:
        value: a header value such as ``" <a@b> (comment)"`` or a bare ``a@b``.
    """
    ids = message_id_list(value, limit=1)
    return ids[0] if ids else None


def message_id_list(value: str, *, limit: int = _MAX_IDS) -> tuple[str, ...]:
    """Return the normalized Message-IDs in a ``References``-style value, in order, unique.

    When more than ``limit`` are present the newest (last) ones are kept: they are the ones
    a reply to our mail carries.
    """
    text = value
    for _ in range(5):  # nested comments: strip innermost first
        stripped = _COMMENT.sub(" ", text)
        if stripped == text:
            break
        text = stripped
    found = _BRACKETED.findall(text)
    if not found:
        found = text.split()
    ids: list[str] = []
    for raw in found:
        inner = "".join(raw.split()).strip("<>")
        if not inner or len(inner) + 2 > _MAX_ID_LENGTH:
            continue
        if any(ord(char) < 33 or char in "<>" for char in inner):
            continue
        normalized = f"<{inner}>"
        if normalized not in ids:
            ids.append(normalized)
    return tuple(ids[-limit:])


def _token(value: str) -> str:
    """Return the first ``;``-separated token, comments removed, lower-cased (``auto-replied``)."""
    return _COMMENT.sub(" ", value).split(";", 1)[0].strip().strip('"').lower()


def _addresses(message: Message, name: str) -> list[str]:
    values = header_values(message, name)
    try:
        pairs = getaddresses(values)
    except (ValueError, IndexError, TypeError):  # pragma: no cover - defensive, stdlib quirk
        return []
    return [addr.strip().lower() for _, addr in pairs if addr.strip()]


def _is_daemon(message: Message) -> bool:
    for address in _addresses(message, "from"):
        local = address.split("@", 1)[0]
        if local in _DAEMONS or local.startswith("mailer-daemon"):
            return True
    raw_from = header_value(message, "from").lower()
    return "mailer-daemon" in raw_from or "mail delivery subsystem" in raw_from


def _is_loop(
    message: Message, sender: str, own_addresses: frozenset[str], loop_marker: str | None
) -> bool:
    if loop_marker:
        marker = loop_marker.strip().lower()
        if any(value.strip().lower() == marker for value in header_values(message, "x-loop")):
            return True
    own = {address.strip().lower() for address in own_addresses}
    return bool(sender) and sender in own


def _auto_reply_signal(message: Message) -> bool:
    auto_submitted = header_values(message, "auto-submitted")
    if any(_token(value) not in {"no", ""} for value in auto_submitted):
        return True
    precedence = {_token(value) for value in header_values(message, "precedence")}
    if "auto_reply" in precedence:
        return True
    for name in ("x-autoreply", "x-autorespond"):
        if any(_token(value) not in {"no", "false", "0"} for value in header_values(message, name)):
            return True
    suppress = header_values(message, "x-auto-response-suppress")
    if any(_token(value) not in {"none", ""} for value in suppress):
        return True
    return any(value.strip() == "<>" for value in header_values(message, "return-path"))


def _bulk_signal(message: Message) -> bool:
    precedence = {_token(value) for value in header_values(message, "precedence")}
    if precedence & {"bulk", "list", "junk"}:
        return True
    return bool(header_values(message, "list-id") or header_values(message, "list-unsubscribe"))


def _children(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [child for child in payload if isinstance(child, Message)]
    return []


def _walk(message: Message, *, max_depth: int = 10) -> Iterable[Message]:
    stack: list[tuple[Message, int]] = [(message, 0)]
    while stack:
        part, depth = stack.pop(0)
        yield part
        if depth < max_depth:
            stack.extend((child, depth + 1) for child in _children(part))


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:  # any malformed Content-Type: treat as untyped data
        return "application/octet-stream"


def _part_text(part: Message) -> str:
    """Return a leaf part's decoded payload as text (headers-only parts often are 7bit)."""
    try:
        data = part.get_payload(decode=True)
    except Exception:  # a broken transfer encoding: use nothing
        return ""
    if not isinstance(data, bytes):
        return ""
    return data.decode("utf-8", "replace")


def _dsn_fields(part: Message) -> list[dict[str, str]]:
    """Return the field blocks of a ``message/delivery-status`` part (per-message first)."""
    blocks: list[dict[str, str]] = []
    children = _children(part)
    if children:
        for child in children:
            items = child.raw_items()
            blocks.append({key.lower(): unicode_header(str(value)).strip() for key, value in items})
        return blocks
    text = _part_text(part).replace("\r\n", "\n")
    for chunk in re.split(r"\n\s*\n", text):
        parsed = HeaderParser(policy=compat32).parsestr(chunk.strip() + "\n")
        block = {key.lower(): str(value).strip() for key, value in parsed.raw_items()}
        if block:
            blocks.append(block)
    return blocks


def _recipient(block: dict[str, str]) -> str:
    for name in ("final-recipient", "original-recipient"):
        value = block.get(name, "")
        address = value.split(";", 1)[1] if ";" in value else value
        address = address.strip().strip("<>").strip().lower()
        if address:
            return address
    return ""


def _original_ids(message: Message, text: str) -> tuple[str, ...]:
    ids: list[str] = []
    for part in _walk(message):
        content_type = _content_type(part)
        if content_type in {"message/rfc822", "message/global"}:
            for child in _children(part)[:1]:
                ids.extend(message_id_list(header_value(child, "message-id"), limit=1))
        elif content_type == "text/rfc822-headers":
            headers = HeaderParser(policy=compat32).parsestr(_part_text(part))
            ids.extend(message_id_list(header_value(headers, "message-id"), limit=1))
    ids.extend(_QUOTED_MESSAGE_ID.findall(text))
    ids.extend(message_id_list(header_value(message, "in-reply-to")))
    ids.extend(message_id_list(header_value(message, "references")))
    unique: list[str] = []
    for found in ids:
        normalized = normalize_message_id(found)
        if normalized and normalized not in unique:
            unique.append(normalized)
    return tuple(unique[:_MAX_IDS])


def _delivery_report(message: Message, text: str) -> tuple[AutoKind, Bounce | None] | None:
    """Read an RFC 3464 report anywhere in the first levels of the message."""
    for part in _walk(message, max_depth=3):
        if _content_type(part) not in {"message/delivery-status", "message/global-delivery-status"}:
            continue
        failed: list[str] = []
        status: str | None = None
        other = False
        for block in _dsn_fields(part):
            action = _token(block.get("action", ""))
            code = block.get("status", "").split()[0] if block.get("status", "").split() else ""
            recipient = _recipient(block)
            if not recipient:
                continue
            if action == "failed" or (not action and code.startswith("5")):
                if recipient not in failed:
                    failed.append(recipient)
                status = status or (code or None)
            else:
                other = True
        bounce = Bounce(_original_ids(message, text), tuple(failed), status)
        if failed:
            return AutoKind.BOUNCE, bounce
        if other:
            # Delayed, delivered or relayed: automatic, but no failure to record.
            return AutoKind.AUTO_REPLY, None
    return None


def classify(
    message: Message,
    *,
    sender: str,
    subject: str,
    text: str,
    own_addresses: frozenset[str] = frozenset(),
    loop_marker: str | None = None,
) -> tuple[AutoKind, Bounce | None]:
    """Classify a parsed mail by the rules in the module docstring.

    Args:
        message: the parsed message (any ``email`` policy).
        sender: the lower-cased ``From`` addr-spec (``""`` when none).
        subject: the decoded subject.
        text: the decoded body text (searched for a free-text bounce's details).
        own_addresses: our mailbox addresses; mail from them is a loop.
        loop_marker: our ``X-Loop`` value.

    Returns:
        The kind and, for ``BOUNCE`` only, what the report says.
    """
    if _is_loop(message, sender, own_addresses, loop_marker):
        return AutoKind.LOOP, None
    report = _delivery_report(message, text)
    if report is not None:
        return report
    if _is_daemon(message):
        recipients = tuple(dict.fromkeys(addr.lower() for addr in _QMAIL_RECIPIENT.findall(text)))
        if recipients or _BOUNCE_SUBJECT.search(subject):
            return AutoKind.BOUNCE, Bounce(_original_ids(message, text), recipients, None)
        return AutoKind.AUTO_REPLY, None
    if _auto_reply_signal(message):
        return AutoKind.AUTO_REPLY, None
    if _bulk_signal(message):
        return AutoKind.BULK, None
    return AutoKind.HUMAN, None
