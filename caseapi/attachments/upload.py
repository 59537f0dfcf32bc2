"""Reading an upload: a ``multipart/form-data`` body, streamed, size-checked as it arrives.

Not FastAPI's ``File()``: that reads and spools the whole body before the route
runs, before the caller is authenticated and before the file's own limit can be
applied. Here the route first checks who asks and for which case, then reads the
body chunk by chunk and stops at the first byte over ``attachments.max_size``
(``AttachmentTooLargeError``, 413). The middleware's limit for this route
(``BodyLimit``'s ``RouteLimit``) bounds the rest of the body: the text fields and
the multipart framing.

Fields: ``file`` (required, one), ``visibility`` and ``comment`` (optional text).
Anything else, a field given twice, a malformed or truncated body: 422
``validation_error`` naming the field (``body`` for the framing).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from caseapi.attachments.errors import AttachmentTooLargeError
from caseapi.cases.errors import CaseValidationError

FILE_FIELD: Final = "file"
TEXT_FIELDS: Final = ("visibility", "comment")
FIELDS: Final = (FILE_FIELD, *TEXT_FIELDS)
#: Largest text field in bytes: a comment of 20,000 characters of up to 4 bytes each.
MAX_TEXT_BYTES: Final = 80_000
#: The body's framing and text fields on top of the file: part headers and
#: boundaries (well under 8 KiB) plus the largest text fields.
MULTIPART_OVERHEAD: Final = 128 * 1024


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """The ``file`` part: its name and type as the client declared them, and its bytes."""

    filename: str
    content_type: str | None
    data: bytes


@dataclass(frozen=True, slots=True)
class UploadForm:
    file: UploadedFile
    visibility: str | None
    comment: str | None


@dataclass
class _Part:
    name: str | None = None
    filename: str | None = None
    content_type: str | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    data: bytearray = field(default_factory=bytearray)


class _Reader:
    def __init__(self, *, max_size: int) -> None:
        self.max_size = max_size
        self.part = _Part()
        self.header_name = b""
        self.header_value = b""
        self.done: dict[str, _Part] = {}
        self.error: Exception | None = None
        self.ended = False

    def fail(self, error: Exception) -> None:
        if self.error is None:
            self.error = error

    def on_part_begin(self) -> None:
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.part.headers.append((self.header_name.strip().lower(), self.header_value.strip()))
        self.header_name = self.header_value = b""

    def on_headers_finished(self) -> None:
        headers = dict(self.part.headers)
        _, options = parse_options_header(headers.get(b"content-disposition", b""))
        if b"name" not in options:
            self.fail(CaseValidationError("body", "a part has no name (Content-Disposition)"))
            return
        name = options[b"name"].decode("utf-8", errors="replace")
        if name not in FIELDS:
            allowed = ", ".join(FIELDS)
            self.fail(CaseValidationError(name, f"unknown field; allowed: {allowed}"))
        elif name in self.done:
            self.fail(CaseValidationError(name, "given more than once"))
        self.part.name = name
        if b"filename" in options:
            self.part.filename = options[b"filename"].decode("utf-8", errors="replace")
        if b"content-type" in headers:
            self.part.content_type = headers[b"content-type"].decode("latin-1")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.error is not None:
            return
        part = self.part
        limit = self.max_size if part.name == FILE_FIELD else MAX_TEXT_BYTES
        if len(part.data) + (end - start) > limit:
            if part.name == FILE_FIELD:
                self.fail(AttachmentTooLargeError(max_size=self.max_size))
            else:
                self.fail(CaseValidationError(str(part.name), f"longer than {limit} bytes"))
            return
        part.data += data[start:end]

    def on_part_end(self) -> None:
        if self.error is None and self.part.name is not None:
            self.done[self.part.name] = self.part

    def on_end(self) -> None:
        self.ended = True


def _boundary(headers: Mapping[str, str]) -> bytes:
    media_type, options = parse_options_header(headers.get("content-type", ""))
    if media_type != b"multipart/form-data" or not options.get(b"boundary"):
        raise CaseValidationError("body", "must be multipart/form-data with a boundary")
    return options[b"boundary"]


def _text(part: _Part | None) -> str | None:
    if part is None:
        return None
    try:
        text = part.data.decode("utf-8")
    except UnicodeDecodeError:
        raise CaseValidationError(str(part.name), "must be UTF-8 text") from None
    if "\x00" in text:
        raise CaseValidationError(str(part.name), "must not contain NUL characters")
    return text


async def read_upload(
    headers: Mapping[str, str], stream: AsyncIterator[bytes], *, max_size: int
) -> UploadForm:
    """Read the upload form from ``stream``, refusing the file at ``max_size`` + 1 bytes.

    Args:
        headers: The request headers (``content-type`` gives the boundary).
        stream: The request body as it arrives.
        max_size: The largest file accepted, in bytes.

    Raises:
        AttachmentTooLargeError: The file passed ``max_size`` (the rest is not read).
        CaseValidationError: Not multipart, malformed, truncated, an unknown or
            repeated field, a bad text field, or no ``file``.
    """
    boundary = _boundary(headers)
    reader = _Reader(max_size=max_size)
    try:
        parser = MultipartParser(
            boundary,
            {
                "on_part_begin": reader.on_part_begin,
                "on_part_data": reader.on_part_data,
                "on_part_end": reader.on_part_end,
                "on_header_field": reader.on_header_field,
                "on_header_value": reader.on_header_value,
                "on_header_end": reader.on_header_end,
                "on_headers_finished": reader.on_headers_finished,
                "on_end": reader.on_end,
            },
        )
        async for chunk in stream:
            parser.write(chunk)
            if reader.error is not None:
                raise reader.error
        parser.finalize()
    except FormParserError as exc:
        raise CaseValidationError("body", f"malformed multipart body: {exc}") from None
    if reader.error is not None:
        raise reader.error
    if not reader.ended:
        raise CaseValidationError("body", "the multipart body ends before its closing boundary")
    upload = reader.done.get(FILE_FIELD)
    if upload is None:
        raise CaseValidationError(FILE_FIELD, "is required")
    return UploadForm(
        file=UploadedFile(
            filename=upload.filename or "",
            content_type=upload.content_type,
            data=bytes(upload.data),
        ),
        visibility=_text(reader.done.get("visibility")),
        comment=_text(reader.done.get("comment")),
    )
