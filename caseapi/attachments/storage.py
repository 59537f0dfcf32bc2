"""Where attachment bytes live: in the row (default) or in a private directory.

Directory storage: the directory is created mode 0700 when missing (an existing
one keeps the mode its owner chose), and each file is written 0600 whatever the
umask, under a temporary name, flushed to disk and renamed into place, so a reader
never sees half a file. Files are named by the SHA-256 of their bytes: written
before the row that names them is inserted (rows are immutable, so the name cannot
wait for the row's id), the same bytes share one file, and a file whose
transaction then rolls back stays behind unreferenced until the same bytes come
again (harmless; nothing names it, nothing deletes files).

Every read checks the SHA-256 recorded with the row: altered or missing bytes are
an error (``AttachmentUnavailableError``), never served.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from pathlib import Path
from typing import Final

from caseapi.attachments.errors import AttachmentUnavailableError
from caseapi.attachments.models import Attachment, Storage

logger = logging.getLogger(__name__)

DIRECTORY_MODE: Final = 0o700
FILE_MODE: Final = 0o600


def stored_name(sha256: str) -> str:
    """The file name of bytes with hex digest ``sha256`` in the directory."""
    return sha256


def _write_file(directory: Path, name: str, data: bytes) -> None:
    directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    final = directory / name
    partial = directory / f".{name}.{os.getpid()}.partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # O_CREAT's mode is masked by the umask
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(partial, final)


async def write_file(directory: Path, name: str, data: bytes) -> None:
    """Write ``data`` to ``directory/name`` (0600, atomically), off the event loop."""
    await asyncio.to_thread(_write_file, directory, name, data)


async def read_bytes(attachment: Attachment, directory: Path | None) -> bytes:
    """The bytes of ``attachment``, checked against its SHA-256.

    Raises:
        AttachmentUnavailableError: Missing, unreadable or altered bytes, or a file
            stored in a directory that is no longer configured.
    """
    try:
        return await _read_checked(attachment, directory)
    except AttachmentUnavailableError as exc:
        # Lost or altered storage is the operator's to know, not only the caller's.
        logger.error("%s", exc)
        raise


async def _read_checked(attachment: Attachment, directory: Path | None) -> bytes:
    if attachment.storage == Storage.DATABASE:
        data = attachment.data
        if data is None:
            raise AttachmentUnavailableError(attachment.id, "no bytes in the database")
    else:
        if directory is None or attachment.stored_name is None:
            raise AttachmentUnavailableError(
                attachment.id, "stored in a directory, but attachments.directory is not set"
            )
        try:
            data = await asyncio.to_thread((directory / attachment.stored_name).read_bytes)
        except OSError as exc:
            raise AttachmentUnavailableError(attachment.id, exc.strerror or str(exc)) from exc
    if hashlib.sha256(data).hexdigest() != attachment.sha256:
        raise AttachmentUnavailableError(attachment.id, "the bytes do not match their SHA-256")
    return data
