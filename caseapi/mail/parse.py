"""Raw mail bytes to a ``ParsedMail``: pure, no I/O, and never a traceback on odd mail.

Real mail is messy, so every step has a fallback and records what it repaired in
``ParsedMail.defects`` instead of failing:

- the stdlib ``email`` parser builds the MIME tree with the ``compat32`` policy, not
  ``default``: ``default`` parses each structured header into objects while parsing, so a
  10,000-part message took 10 s against 0.6 s (a 10 MB mail of tiny parts would stall the
  poller for minutes), and its header parser is where malformed headers raise. We read
  headers raw anyway. Each header value is cut at ``MAX_HEADER_BYTES`` at every level,
  and the top block keeps at most ``MAX_HEADER_FIELDS`` fields (plus the ones we read);
- headers are read raw (``Message.raw_items``) and decoded here: RFC 2047 encoded-words
  (adjacent words joined before decoding, so a character split across two words survives),
  8-bit bytes as UTF-8 or Windows-1252;
- bodies: the declared charset, else UTF-8, Windows-1252, ISO-8859-1 (``html2text``);
  HTML-only mail becomes safe text; ``format=flowed`` is unwrapped (RFC 3676);
- structure: ``multipart/alternative`` prefers text/plain, forwarded ``message/rfc822``
  parts are shown inline with their attachments kept, nesting past ``MAX_DEPTH`` is cut;
- attachment names lose any path, control characters and reserved device names, and an
  empty name becomes ``attachment-<n>.<ext>``.

``MailParseError`` is raised only when the input is not a mail at all: empty, without a
single header field we know, or a structure the parser cannot build (thousands of nested
parts exhaust its recursion). ``reply_text`` is ``text`` without the quoted original and
the signature (``html2text.strip_quoted_reply``); the full text is always kept in ``text``.
"""

from __future__ import annotations

import binascii
import mimetypes
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesParser
from email.policy import Compat32
from email.utils import getaddresses, parsedate_to_datetime

from caseapi.core.errors import CaseApiError
from caseapi.mail.classify import (
    AutoKind,
    Bounce,
    classify,
    header_value,
    header_values,
    message_id_list,
    normalize_message_id,
)
from caseapi.mail.html2text import (
    decode_bytes,
    html_to_text,
    strip_quoted_reply,
    tidy_text,
    unflow,
)

__all__ = [
    "AutoKind",
    "Bounce",
    "MailAttachment",
    "MailParseError",
    "ParsedMail",
    "find_case_ref",
    "parse_mail",
    "strip_quoted_reply",
]

MAX_DEPTH = 10
MAX_PARTS = 500
MAX_HEADER_FIELDS = 300
MAX_HEADER_BYTES = 16 * 1024
MAX_TEXT_CHARS = 1_000_000
MAX_HTML_CHARS = 2_000_000
_KEEP_ALWAYS = frozenset(
    {b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"in-reply-to", b"references",
     b"content-type", b"content-transfer-encoding", b"mime-version", b"auto-submitted",
     b"precedence", b"x-loop", b"list-id", b"list-unsubscribe", b"return-path", b"sender",
     b"x-autoreply", b"x-autorespond", b"x-auto-response-suppress", b"content-disposition"}
)  # fmt: skip
_KNOWN_FIELDS = _KEEP_ALWAYS | {b"received", b"reply-to", b"delivered-to", b"x-mailer"}
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_CASE_REF = re.compile(r"\[?\b(CS-\d{4}-\d{6})\b\]?", re.IGNORECASE)
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)
_UNSAFE_FILENAME = re.compile(r'[\x00-\x1f\x7f<>:"|?*]')
_MAX_FILENAME = 150
_SIGNATURE_TYPES = frozenset(
    {"application/pkcs7-signature", "application/x-pkcs7-signature", "application/pgp-signature"}
)


class MailParseError(CaseApiError):
    """The input is not an e-mail message at all; ``reason`` says why."""

    code = "mail_parse_error"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"not an e-mail message: {reason}")


@dataclass(frozen=True, slots=True)
class MailAttachment:
    """A file carried by a mail.

    Attributes:
        filename: sanitized, never empty, without path parts.
        content_type: lower-case ``type/subtype``.
        data: the decoded bytes.
        inline: the part was meant to be shown in the body (``Content-Disposition: inline``
            or an image referenced by ``Content-ID``).
    """

    filename: str
    content_type: str
    data: bytes
    inline: bool


@dataclass(frozen=True, slots=True)
class ParsedMail:
    """Everything the mail channel needs from one message (``MAIL_DESIGN.md``).

    Attributes:
        message_id: normalized ``<id>``, or None when absent or unusable.
        in_reply_to: normalized ids of ``In-Reply-To``.
        references: normalized ids of ``References`` (the newest 100), in order.
        subject: RFC 2047 decoded, whitespace folded.
        sender: lower-cased addr-spec of ``From`` (``""`` when none or unparseable).
        sender_name: decoded display name of ``From``.
        recipients: ``To`` and ``Cc`` addr-specs, lower-cased, unique.
        date: ``Date`` as aware UTC, or None when absent or unparseable.
        auto: the sender classification (``classify``).
        bounce: the delivery report's details, set exactly when ``auto`` is ``BOUNCE``.
        text: the whole body as safe text; forwarded messages inline; for a delivery
            report only its human-readable part.
        reply_text: ``text`` without the quoted original and signature.
        attachments: files, in order (detached signatures dropped).
        size: ``len(raw)``.
        defects: what was repaired or guessed, human readable.
    """

    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject: str
    sender: str
    sender_name: str
    recipients: tuple[str, ...]
    date: datetime | None
    auto: AutoKind
    bounce: Bounce | None
    text: str
    reply_text: str
    attachments: tuple[MailAttachment, ...]
    size: int
    defects: tuple[str, ...]


def find_case_ref(subject: str) -> str | None:
    """Return the first case reference (``CS-2026-000042``) in a subject, or None."""
    match = _CASE_REF.search(subject)
    return match.group(1).upper() if match else None


# --- headers -----------------------------------------------------------------------------


class _CappedPolicy(Compat32):
    """``compat32`` that cuts every header value to ``MAX_HEADER_BYTES`` while parsing."""

    def __init__(self, *, truncated: list[str]) -> None:
        super().__init__()
        # Policies are immutable by design; this one collects per parse what it cut.
        object.__setattr__(self, "truncated", truncated)
        self.truncated: list[str]

    def header_source_parse(self, sourcelines: list[str]) -> tuple[str, str]:
        name, value = super().header_source_parse(sourcelines)
        if len(value) > MAX_HEADER_BYTES:
            self.truncated.append(name)
            value = value[:MAX_HEADER_BYTES]
        return name, value


def _cap_header_fields(raw: bytes, defects: list[str]) -> bytes:
    """Drop top-level header fields past ``MAX_HEADER_FIELDS`` (keeping the ones we read)."""
    match = re.search(rb"\r?\n\r?\n", raw)
    head, rest = (raw[: match.start()], raw[match.start() :]) if match else (raw, b"")
    if head.count(b"\n") < MAX_HEADER_FIELDS:
        return raw
    fields: list[list[bytes]] = []
    for line in head.splitlines():
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        else:
            fields.append([line])
    kept: list[bytes] = []
    for field in fields:
        name = field[0].split(b":", 1)[0].strip().lower()
        if len(kept) < MAX_HEADER_FIELDS or name in _KEEP_ALWAYS:
            kept.append(b"\r\n".join(field))
    if len(kept) < len(fields):
        dropped = len(fields) - len(kept)
        defects.append(f"{dropped} header fields past the first {MAX_HEADER_FIELDS} dropped")
    return b"\r\n".join(kept) + rest


def _decode_words(value: str, defects: list[str]) -> str:
    """Decode RFC 2047 encoded-words; whitespace between adjacent words is dropped."""
    if "=?" not in value:
        return value
    pieces: list[str] = []
    pending: list[bytes] = []
    pending_charset: str | None = None
    position = 0

    def flush() -> None:
        nonlocal pending, pending_charset
        if pending:
            text, defect = decode_bytes(b"".join(pending), pending_charset)
            if defect:
                defects.append(f"header: {defect}")
            pieces.append(text)
        pending, pending_charset = [], None

    for match in _ENCODED_WORD.finditer(value):
        between = value[position : match.start()]
        if between.strip() or not pending:
            flush()
            pieces.append(between)
        charset = match.group(1).split("*", 1)[0]  # RFC 2231 language suffix
        data = match.group(3)
        try:
            if match.group(2) in "bB":
                chunk = binascii.a2b_base64(data + "=" * (-len(data) % 4))
            else:
                chunk = binascii.a2b_qp(data.encode("ascii", "replace"), header=True)
        except (binascii.Error, ValueError):
            defects.append("header: undecodable encoded-word kept as is")
            flush()
            pieces.append(match.group(0))
            position = match.end()
            continue
        if pending and charset.lower() != (pending_charset or "").lower():
            flush()
        pending.append(chunk)
        pending_charset = charset
        position = match.end()
    flush()
    pieces.append(value[position:])
    return "".join(pieces)


def _fold(value: str) -> str:
    return " ".join(tidy_text(value).split())


def _addresses(
    message: Message, names: tuple[str, ...], defects: list[str]
) -> list[tuple[str, str]]:
    values = [value for name in names for value in header_values(message, name)]
    if not values:
        return []
    try:
        pairs = getaddresses(values)
    except (ValueError, IndexError, TypeError):  # pragma: no cover - stdlib quirk
        defects.append(f"unparseable address in {', '.join(names)}")
        return []
    result: list[tuple[str, str]] = []
    for name, address in pairs:
        addr = address.strip().lower()
        if not re.fullmatch(r"[^@\s<>,;]+@[^@\s<>,;]+", addr):
            if addr:
                defects.append(f"invalid address {addr[:80]!r} in {', '.join(names)}")
            continue
        result.append((_fold(_decode_words(name, defects)), addr))
    return result


def _parse_date(value: str, defects: list[str]) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        defects.append(f"unparseable Date {value[:80]!r}")
        return None
    if parsed.tzinfo is None:
        defects.append("Date without a time zone; taken as UTC")
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        defects.append(f"Date out of range {value[:80]!r}")
        return None


# --- bodies ------------------------------------------------------------------------------


def _content_type(part: Message, defects: list[str]) -> str:
    try:
        return part.get_content_type()
    except Exception:  # any malformed Content-Type: RFC 2045 says treat it as plain text
        defects.append("malformed Content-Type; read as text/plain")
        return "text/plain"


def _param(part: Message, name: str, header: str = "content-type") -> str | None:
    try:
        value = part.get_param(name, header=header)
    except Exception:  # malformed parameters: behave as if absent
        return None
    if isinstance(value, tuple):  # RFC 2231 (charset, language, value)
        try:
            charset = value[0] or "us-ascii"
            raw = value[2].encode("latin-1", "surrogateescape")
            return decode_bytes(raw, charset)[0]
        except (UnicodeError, LookupError):
            return value[2]
    return value if isinstance(value, str) else None


def _payload(part: Message, defects: list[str]) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # a broken transfer encoding
        defects.append("undecodable transfer encoding; part dropped")
        return b""
    if isinstance(data, bytes):
        return data
    payload = part.get_payload()
    return payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""


def _text_of(part: Message, content_type: str, defects: list[str]) -> str:
    data = _payload(part, defects)
    text, defect = decode_bytes(data, _param(part, "charset"))
    if defect:
        defects.append(f"{content_type}: {defect}")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    limit = MAX_HTML_CHARS if content_type == "text/html" else MAX_TEXT_CHARS
    if len(text) > limit:
        # A case comment is read by people; the raw message keeps the rest.
        defects.append(f"{content_type} part longer than {limit} characters cut")
        text = text[:limit]
    if content_type == "text/html":
        return html_to_text(text)
    if (_param(part, "format") or "").lower() == "flowed":
        text = unflow(text, (_param(part, "delsp") or "").lower() == "yes")
    return tidy_text(text)


def _extension(content_type: str) -> str:
    special = {"text/plain": ".txt", "message/rfc822": ".eml", "text/calendar": ".ics"}
    return special.get(content_type) or mimetypes.guess_extension(content_type) or ".bin"


def safe_filename(raw: str | None, *, content_type: str, index: int) -> str:
    """Return a filename safe to store and to offer for download.

    Drops any directory part (``../../evil.pdf`` -> ``evil.pdf``), control and
    shell-hostile characters, leading/trailing dots and spaces; renames Windows device
    names (``con.txt`` -> ``_con.txt``); keeps at most 150 characters with the extension;
    an empty result becomes ``attachment-<index><ext>`` from the content type.
    """
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_FILENAME.sub("_", tidy_text(name).replace("\n", " "))
    name = " ".join(name.split()).strip(". _")
    if _WINDOWS_RESERVED.match(name):
        name = f"_{name}"
    if len(name) > _MAX_FILENAME:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            name = f"{stem[: _MAX_FILENAME - len(ext) - 1]}.{ext}"
        else:
            name = name[:_MAX_FILENAME]
    return name or f"attachment-{index}{_extension(content_type)}"


@dataclass
class _Body:
    """What the walk collects (mutable while walking, frozen into ParsedMail after)."""

    texts: list[str]
    attachments: list[MailAttachment]
    defects: list[str]
    parts: int = 0
    files_only: bool = False  # walking an alternative we do not show: keep its files


def _disposition(part: Message) -> str:
    value = header_value(part, "content-disposition")
    return value.split(";", 1)[0].strip().lower()


def _filename(part: Message, defects: list[str]) -> str | None:
    name = _param(part, "filename", "content-disposition") or _param(part, "name")
    if name is None:
        return None
    return _fold(_decode_words(name, defects))  # Outlook encodes names RFC 2047-style


def _add_attachment(part: Message, content_type: str, body: _Body) -> None:
    data = _payload(part, body.defects)
    index = len(body.attachments) + 1
    raw_name = _filename(part, body.defects)
    filename = safe_filename(raw_name, content_type=content_type, index=index)
    if raw_name is not None and filename != raw_name:
        body.defects.append(f"attachment name {raw_name[:80]!r} stored as {filename!r}")
    inline = _disposition(part) == "inline" or (
        _disposition(part) == "" and bool(header_value(part, "content-id"))
    )
    body.attachments.append(MailAttachment(filename, content_type, data, inline))


def _children(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [child for child in payload if isinstance(child, Message)]
    return []


def _forward_header(message: Message, defects: list[str]) -> str:
    lines = ["---------- Forwarded message ----------"]
    for name in ("from", "date", "subject", "to"):
        value = _fold(_decode_words(header_value(message, name), defects))
        if value:
            lines.append(f"{name.capitalize()}: {value}")
    return "\n".join(lines)


def _walk(part: Message, body: _Body, depth: int) -> None:
    body.parts += 1
    if body.parts > MAX_PARTS:
        if body.parts == MAX_PARTS + 1:
            body.defects.append(f"more than {MAX_PARTS} MIME parts; the rest ignored")
        return
    if depth > MAX_DEPTH:
        body.defects.append(f"MIME nesting deeper than {MAX_DEPTH}; inner parts ignored")
        return
    content_type = _content_type(part, body.defects)
    main = content_type.split("/", 1)[0]
    children = _children(part)
    if content_type in {"message/delivery-status", "message/global-delivery-status"}:
        return  # the machine-readable half of a bounce: classify reads it
    if content_type in {"message/rfc822", "message/global"} and children:
        if not body.files_only:
            body.texts.append(_forward_header(children[0], body.defects))
        _walk(children[0], body, depth + 1)
        return
    if main == "multipart" or children:
        if main == "multipart" and not children:
            _unparsed_multipart(part, content_type, body, depth)
            return
        if content_type == "multipart/alternative":
            _alternative(children, body, depth)
        elif content_type == "multipart/report":
            # Only the human-readable first part; the status and returned message are
            # read by classify, and the returned message's attachments are ours anyway.
            _walk(children[0], body, depth + 1)
        else:
            for child in children:
                _walk(child, body, depth + 1)
        return
    disposition = _disposition(part)
    if content_type in _SIGNATURE_TYPES:
        return  # a detached signature (S/MIME, PGP) is not something to keep on a case
    has_name = _filename(part, []) is not None
    if content_type in {"text/plain", "text/html"} and disposition != "attachment" and not has_name:
        if body.files_only:
            return
        text = _text_of(part, content_type, body.defects)
        if text:
            body.texts.append(text)
        return
    _add_attachment(part, content_type, body)


def _unparsed_multipart(part: Message, content_type: str, body: _Body, depth: int) -> None:
    """A multipart without a (matching) boundary: guess it from the body, else show text."""
    payload = part.get_payload()
    text = payload if isinstance(payload, str) else ""
    match = re.match(r"\s*--([^\s]{1,70})[ \t]*\r?\n", text)
    if match and depth < MAX_DEPTH:
        boundary = match.group(1).replace('"', "")
        head = f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
        data = (head + text).encode("utf-8", "surrogateescape")
        guessed = _parse_bytes(data, body.defects)
        if _children(guessed):
            body.defects.append(f"{content_type} without a usable boundary; guessed {boundary!r}")
            _walk(guessed, body, depth + 1)
            return
    body.defects.append(f"{content_type} without parts; read as text")
    if not body.files_only:
        body.texts.append(_text_of(part, "text/plain", body.defects))


def _alternative(children: list[Message], body: _Body, depth: int) -> None:
    """Show the best text alternative; keep non-text ones (a calendar invite) as files."""
    types = [_content_type(child, body.defects) for child in children]
    preferred: Message | None = None
    for wanted in ("text/plain", "text/html"):
        for child, content_type in zip(children, types, strict=True):
            if (
                content_type == wanted
                and _disposition(child) != "attachment"
                and (content_type == "text/html" or _text_of(child, wanted, []).strip())
            ):
                preferred = child
                break
        if preferred is not None:
            break
    if preferred is None:
        # A multipart/related or mixed alternative (HTML with images): walk the richest.
        nested = [child for child in children if _children(child)]
        if nested:
            _walk(nested[-1], body, depth + 1)
    else:
        _walk(preferred, body, depth + 1)
    for child, content_type in zip(children, types, strict=True):
        if child is preferred:
            continue
        if content_type == "text/calendar":
            _add_attachment(child, content_type, body)
        elif content_type.startswith("multipart/") and preferred is not None:
            # An HTML alternative with its inline images: keep the images, not the text.
            files_only, body.files_only = body.files_only, True
            _walk(child, body, depth + 1)
            body.files_only = files_only
        elif not content_type.startswith(("text/", "multipart/")):
            _walk(child, body, depth + 1)


# --- the whole message -------------------------------------------------------------------


def _parse_bytes(raw: bytes, defects: list[str]) -> Message:
    truncated: list[str] = []
    try:
        message = BytesParser(policy=_CappedPolicy(truncated=truncated)).parsebytes(raw)
    except Exception as exc:  # deep nesting (RecursionError) or a parser bug on odd input
        raise MailParseError(f"unparseable message structure ({type(exc).__name__})") from exc
    if truncated:
        names = ", ".join(dict.fromkeys(truncated[:5]))
        defects.append(f"header fields longer than {MAX_HEADER_BYTES} bytes cut: {names}")
    return message


def _structure_defects(message: Message, defects: list[str]) -> None:
    seen: set[str] = set()
    stack = [message]
    while stack and len(seen) < 20:
        part = stack.pop()
        for defect in getattr(part, "defects", []):
            name = type(defect).__name__
            if name not in seen:
                seen.add(name)
                defects.append(f"MIME: {name}")
        stack.extend(_children(part)[:50])


def parse_mail(
    raw: bytes,
    *,
    own_addresses: frozenset[str] = frozenset(),
    loop_marker: str | None = None,
) -> ParsedMail:
    """Parse one raw RFC 5322 message.

    Args:
        raw: the message bytes as received (size limits are the caller's).
        own_addresses: our mailbox addresses; mail from them classifies as ``LOOP``.
        loop_marker: our ``X-Loop`` value; mail carrying it classifies as ``LOOP``.

    Returns:
        The parsed mail; repairs and guesses are listed in ``defects``.

    Raises:
        MailParseError: the input is empty, has no header field we know, or its MIME
            structure cannot be built (pathological nesting).
    """
    raw = bytes(raw)
    if not raw.strip():
        raise MailParseError("empty input")
    defects: list[str] = []
    message = _parse_bytes(_cap_header_fields(raw, defects), defects)
    names = {key.strip().lower().encode("ascii", "replace") for key, _ in message.raw_items()}
    if not names & _KNOWN_FIELDS:
        raise MailParseError("no mail header fields (From, Date, Subject, Received, ...)")
    _structure_defects(message, defects)

    subject = _fold(_decode_words(header_value(message, "subject"), defects))
    senders = _addresses(message, ("from",), defects)
    sender_name, sender = senders[0] if senders else ("", "")
    if not senders:
        defects.append("no usable From address")
    recipients = tuple(
        dict.fromkeys(addr for _, addr in _addresses(message, ("to", "cc"), defects))
    )
    message_id = normalize_message_id(header_value(message, "message-id"))
    if message_id is None:
        defects.append("no Message-ID")
    body = _Body(texts=[], attachments=[], defects=defects)
    _walk(message, body, 0)
    text = tidy_text("\n\n".join(chunk for chunk in body.texts if chunk.strip()))
    auto, bounce = classify(
        message,
        sender=sender,
        subject=subject,
        text=text,
        own_addresses=own_addresses,
        loop_marker=loop_marker,
    )
    return ParsedMail(
        message_id=message_id,
        in_reply_to=message_id_list(header_value(message, "in-reply-to")),
        references=message_id_list(" ".join(header_values(message, "references"))),
        subject=subject,
        sender=sender,
        sender_name=sender_name,
        recipients=recipients,
        date=_parse_date(header_value(message, "date"), defects),
        auto=auto,
        bounce=bounce,
        text=text,
        reply_text=strip_quoted_reply(text) if text else "",
        attachments=tuple(body.attachments),
        size=len(raw),
        defects=tuple(dict.fromkeys(defects)),
    )
