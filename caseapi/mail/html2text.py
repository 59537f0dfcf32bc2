"""Mail bodies to text: HTML to safe text, charsets, format=flowed, quoted-reply stripping.

``html_to_text`` uses the stdlib ``html.parser``: it drops ``script``, ``style``, ``head``
and other non-content elements, keeps link text and shows the target in brackets, shows an
image only by its ``alt`` text, turns block elements into line breaks and blockquotes into
``> `` lines (so quoted-reply stripping works on HTML-only replies), decodes entities and
normalizes whitespace. It never fetches anything: no URL is followed, no image loaded.

``decode_bytes`` turns a part's bytes into text: the declared charset, then UTF-8, then
Windows-1252, then ISO-8859-1 (which cannot fail). ``iso-8859-1`` and ``us-ascii`` labels
are read as Windows-1252, as browsers do (WHATWG Encoding), because mail clients mislabel
smart quotes and the euro sign that way.

``unflow`` undoes RFC 3676 ``format=flowed``. ``strip_quoted_reply`` cuts a reply at the
quoted original: Gmail/Apple "On ... wrote:" (also wrapped on two lines), Italian "Il giorno
... ha scritto:", French and German equivalents, "-----Original Message-----", Outlook's
"From:/Sent:" header block (EN/IT/FR/DE), then drops ``>`` lines and the ``-- `` signature.
A forwarded message is content and is never cut; if nothing would be left, nothing is cut.
"""

from __future__ import annotations

import codecs
import html
import itertools
import re
from html.parser import HTMLParser

_SKIP = frozenset(
    {"script", "style", "head", "title", "noscript", "template", "iframe", "object", "svg",
     "math", "frameset", "frame", "applet", "embed", "audio", "video", "canvas", "select"}
)  # fmt: skip
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
     "source", "track", "wbr"}
)  # fmt: skip
_BLOCK = frozenset(
    {"address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt",
     "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5",
     "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table",
     "tbody", "thead", "tfoot", "tr", "ul", "caption"}
)  # fmt: skip
_PARAGRAPH = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "pre"})
_SHOWN_SCHEMES = ("http://", "https://", "mailto:", "ftp://")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u2028\u2029\ufeff]")
_MAX_DEPTH = 200  # open elements tracked; malformed HTML never closes its tags
_LATIN1_LABELS = frozenset({"iso-8859-1", "latin-1", "latin1", "ascii", "us-ascii", "iso8859-1"})


class _TextExtractor(HTMLParser):
    """Collects visible text line by line; see the module docstring for the rules."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._line: list[str] = []
        self._skip: list[str] = []
        self._quote = 0
        self._pre = 0
        self._links: list[tuple[str, int]] = []

    def _flush(self) -> None:
        text = "".join(self._line)
        self._line = []
        if self._pre == 0:
            text = " ".join(text.split())
        if text or self._pre:
            self.lines.append("> " * self._quote + text)

    def _paragraph(self) -> None:
        self._flush()
        if self.lines and self.lines[-1].strip("> "):
            self.lines.append("> " * self._quote)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            # Browsers close an unclosed <head> at <body>; so must we, or lose the mail.
            # (Inside <script>/<style> the parser sees no tags, so this cannot unhide them.)
            self._skip.clear()
        if self._skip:
            if tag not in _VOID and len(self._skip) < _MAX_DEPTH:
                self._skip.append(tag)
            return
        if tag in _SKIP:
            self._skip.append(tag)
            return
        values = {name: value or "" for name, value in attrs}
        if tag == "blockquote":
            self._paragraph()
            self._quote = min(self._quote + 1, 20)
        elif tag in _PARAGRAPH:
            self._paragraph()
        elif tag in _BLOCK:
            self._flush()
        if tag == "br":
            self._flush()
        elif tag == "hr":
            self.lines.append("> " * self._quote + "----")
        elif tag == "li":
            self._line.append("- ")
        elif tag in {"td", "th"}:
            self._line.append(" ")
        elif tag == "pre":
            self._pre += 1
        elif tag == "img":
            alt = " ".join(values.get("alt", "").split())
            if alt:
                self._line.append(f"[{alt}]")
        elif tag == "a" and len(self._links) < _MAX_DEPTH:
            self._links.append((values.get("href", "").strip(), len("".join(self._line))))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._skip:
            if tag in self._skip:
                while self._skip and self._skip.pop() != tag:
                    pass
            return
        if tag == "a" and self._links:
            href, start = self._links.pop()
            label = " ".join("".join(self._line)[start:].split())
            shown = href.removeprefix("mailto:") if href.startswith("mailto:") else href
            if href.lower().startswith(_SHOWN_SCHEMES) and shown and shown != label:
                self._line.append(f" [{href}]")
        elif tag == "pre":
            self._flush()
            self._pre = max(self._pre - 1, 0)
            self._paragraph()
        elif tag == "blockquote":
            self._flush()
            self._quote = max(self._quote - 1, 0)
            self._paragraph()
        elif tag in _PARAGRAPH:
            self._paragraph()
        elif tag in _BLOCK:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._pre:
            lines = data.split("\n")
            for line in lines[:-1]:
                self._line.append(line)
                self._flush()
            self._line.append(lines[-1])
        else:
            self._line.append(data)

    def finish(self) -> str:
        self._flush()
        return tidy_text("\n".join(self.lines))


def tidy_text(text: str) -> str:
    """Return ``text`` with newlines unified, control characters gone, blank runs collapsed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text.replace("\xa0", " ").replace("\t", "    "))
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


def html_to_text(markup: str) -> str:
    """Return the visible text of an HTML document as safe plain text.

    Args:
        markup: HTML, however malformed.

    Returns:
        Plain text (no markup, no scripts or styles, link targets in brackets).
    """
    extractor = _TextExtractor()
    try:
        extractor.feed(markup)
        extractor.close()
    except AssertionError:
        # _markupbase asserts on some malformed declarations ("<![foo["): strip tags instead.
        stripped = re.sub(r"(?is)<(script|style|head)\b.*?</\1\s*>", " ", markup)
        stripped = re.sub(r"(?s)<[^>]*>", " ", stripped)
        return tidy_text(" ".join(html.unescape(stripped).split()))
    return extractor.finish()


def _codec(label: str) -> str | None:
    """Return the Python codec for a MIME charset label, or None for unknown/non-text ones."""
    name = label.strip().strip("\"'").lower()
    if not name:
        return None
    if name in _LATIN1_LABELS:
        return "cp1252"
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    # Codecs such as base64, rot13 or zlib are byte transforms, not charsets.
    if not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def decode_bytes(data: bytes, charset: str | None) -> tuple[str, str | None]:
    """Decode ``data`` as text, falling back when the declared charset is wrong or unknown.

    Args:
        data: the part's payload after transfer decoding.
        charset: the declared charset label, if any.

    Returns:
        The text and a human-readable defect when the declared charset was not used as is.
    """
    declared = _codec(charset) if charset else None
    label = (charset or "").strip().strip("\"'").lower()
    if label in _LATIN1_LABELS:
        # Valid UTF-8 with 8-bit bytes is almost never real Latin-1: the label is wrong.
        attempts = ["utf-8", "cp1252"]
        expected = {"cp1252"}
        if data.isascii():
            return data.decode("ascii"), None
    else:
        attempts = [codec for codec in (declared, "utf-8", "cp1252") if codec]
        expected = {declared} if declared else {"utf-8"}
    for codec in dict.fromkeys(attempts):
        try:
            text = data.decode(codec)
        except (UnicodeError, LookupError, ValueError, TypeError):
            continue
        if codec in expected:
            return text, None
        if charset is None:
            return text, f"no charset declared; decoded as {codec}"
        return text, f"charset {charset!r} did not fit; decoded as {codec}"
    shown = charset or "none"
    return data.decode("latin-1", "replace"), f"charset {shown!r} did not fit; decoded as latin-1"


def unflow(text: str, delsp: bool) -> str:
    """Undo RFC 3676 ``format=flowed``: join soft-broken lines of the same quote depth."""
    out: list[str] = []
    carry: str | None = None
    carry_depth = -1
    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        body = line[depth:]
        body = body.removeprefix(" ")  # space-stuffing
        if carry is not None and depth != carry_depth:
            out.append(carry)
            carry = None
        content = ("> " * depth if depth else "") + body if carry is None else carry + body
        if body.endswith(" ") and body != "-- ":
            carry = content[:-1] if delsp else content
            carry_depth = depth
        else:
            out.append(content)
            carry = None
    if carry is not None:
        out.append(carry)
    return "\n".join(out)


# --- quoted replies ----------------------------------------------------------------------

_REPLY_HEADER = re.compile(
    # Gmail and Apple Mail wrap a long attribution line once; a quoted one is not ours.
    r"^[ \t]*(?:On|Il|Le|Am)[ \t][^\n]{0,300}?(?:\n(?!>)[^\n]{0,200}?)?[ \t\n]"
    r"(?:wrote|ha\s+scritto|a\s+écrit|schrieb[^\n]{0,100}?)[ \t]?:[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_ORIGINAL_MESSAGE = re.compile(
    r"^[ \t]*-{2,}[ \t]*(?:Original Message|Messaggio originale|Ursprüngliche Nachricht)"
    r"[ \t]*-{2,}[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_FORWARDED = re.compile(
    r"^[ \t]*-*[ \t]*(?:Forwarded message|Begin forwarded message|Messaggio inoltrato|"
    r"Inizio messaggio inoltrato)[ \t]*:?[ \t]*-*[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_OUTLOOK_FROM = re.compile(r"^[ \t]*\**(?:From|Da|De|Von)[ \t]*:\**[ \t]", re.IGNORECASE | re.M)
_OUTLOOK_SENT = re.compile(
    r"^[ \t]*\**(?:Sent|Date|Inviato|Data|Envoyé|Gesendet)[ \t]*:\**[ \t]", re.IGNORECASE
)


def _reply_cut(text: str) -> int | None:
    """Return the offset where the quoted original starts, if one is recognised."""
    starts = [
        match.start()
        for match in (_REPLY_HEADER.search(text), _ORIGINAL_MESSAGE.search(text))
        if match
    ]
    for match in itertools.islice(_OUTLOOK_FROM.finditer(text), 200):
        following = text[match.end() : match.end() + 2000].split("\n", 5)[1:5]
        if any(_OUTLOOK_SENT.match(line) for line in following):
            start = match.start()
            previous = text.rfind("\n", 0, max(start - 1, 0)) + 1
            # An underscore rule often precedes Outlook's header block.
            if start and set(text[previous : start - 1].strip()) == {"_"}:
                start = previous
            starts.append(start)
            break
    return min(starts) if starts else None


def strip_quoted_reply(text: str) -> str:
    """Return the new part of a reply: without the quoted original and the signature.

    A forwarded message is content, not a quote: nothing after its marker is cut.
    Conservative: when stripping would leave nothing, the text is returned unchanged.
    """
    forward = _FORWARDED.search(text)
    head = text[: forward.start()] if forward else text
    cut = _reply_cut(head)
    kept = text if cut is None else text[:cut]
    lines = [line for line in kept.split("\n") if not line.lstrip().startswith(">")]
    for index in range(len(lines) - 1, -1, -1):
        if lines[index] in ("-- ", "--"):
            lines = lines[:index]
            break
    reply = tidy_text("\n".join(lines)).strip()
    return reply or text
