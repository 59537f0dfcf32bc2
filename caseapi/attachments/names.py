"""File names and content types: cleaned on the way in, made safe on the way out.

Pure functions, no I/O. A name comes from a client or a mail and ends up in a
``Content-Disposition`` header and on someone's disk, so it keeps no path, no control
or invisible formatting character (a right-to-left override can make ``exe.txt``
look like ``txt.exe``), no character Windows refuses, no reserved device name and no
trailing dot or space; it is at most ``MAX_FILENAME`` characters, keeps its
extension when cut, and is never empty.

The declared content type is recorded (normalized) but never trusted for serving:
``served_type`` answers it only for a few kinds a browser shows without running
anything, and everything is sent as an attachment with ``nosniff`` anyway.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final
from urllib.parse import quote

MAX_FILENAME: Final = 200
FALLBACK_NAME: Final = "attachment"
OCTET_STREAM: Final = "application/octet-stream"
#: Extensions longer than this are not kept whole when a name is cut.
_MAX_EXTENSION: Final = 16
_WINDOWS_RESERVED_CHARS: Final = re.compile(r'[<>:"/\\|?*]')
_WINDOWS_DEVICES: Final = frozenset(
    {"con", "prn", "aux", "nul", "conin$", "conout$"}
    | {f"{port}{n}" for port in ("com", "lpt") for n in (*"123456789", "¹", "²", "³")}
)
#: Control (Cc), format (Cf: bidi overrides, zero-width), surrogate (Cs), private
#: use (Co), unassigned (Cn) and line/paragraph separators (Zl, Zp).
_DROPPED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_TOKEN: Final = r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}"
_MEDIA_TYPE: Final = re.compile(rf"{_TOKEN}/{_TOKEN}")
#: Served as recorded: displayed by browsers without running anything. Never HTML,
#: SVG or XML (scripts), never anything unknown.
SAFE_TYPES: Final = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/bmp",
        "application/pdf",
        "text/plain",
        "text/csv",
    }
)


def sanitize_filename(name: str | None) -> str:
    """A safe, non-empty file name of at most ``MAX_FILENAME`` characters from ``name``."""
    text = unicodedata.normalize("NFC", name or "")
    # The last path part, whichever the separator (a client's or a mail's path).
    text = re.split(r"[/\\]", text)[-1]
    text = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if unicodedata.category(ch) not in _DROPPED_CATEGORIES or ch in "\t\n\r"
    )
    text = _WINDOWS_RESERVED_CHARS.sub("_", " ".join(text.split()))
    text = _trim(text)
    stem, dot, extension = text.partition(".")
    if stem.strip().lower() in _WINDOWS_DEVICES:
        text = f"_{text}"
    if len(text) > MAX_FILENAME:
        stem, dot, extension = text.rpartition(".")
        if dot and stem and len(extension) < _MAX_EXTENSION:
            text = _trim(stem[: MAX_FILENAME - len(extension) - 1]) + "." + extension
        else:
            text = _trim(text[:MAX_FILENAME])
    return text or FALLBACK_NAME


def _trim(text: str) -> str:
    # Leading dots hide files (and ".." is a path); Windows drops trailing ones.
    return text.strip(" .")


def normalize_content_type(declared: str | None) -> str:
    """``type/subtype`` in lower case, without parameters; octet-stream if not one."""
    media_type = (declared or "").split(";", 1)[0].strip().lower()
    return media_type if _MEDIA_TYPE.fullmatch(media_type) else OCTET_STREAM


def served_type(recorded: str) -> str:
    """The ``Content-Type`` a download is served with: as recorded only if safe."""
    return recorded if recorded in SAFE_TYPES else OCTET_STREAM


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII ``filename`` and the exact UTF-8 ``filename*``."""
    ascii_name = "".join(ch if " " <= ch <= "~" and ch not in '"\\%' else "_" for ch in filename)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"
