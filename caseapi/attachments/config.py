"""The ``attachments.*`` settings."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from pydantic import ByteSize, Field, field_validator

from caseapi.core.config import Section

DEFAULT_MAX_SIZE: Final = 10 * 1024 * 1024
DEFAULT_MAX_PER_CASE: Final = 100
#: Held in memory while it arrives and stored in one row or file: larger is a typo.
MAX_MAX_SIZE: Final = 256 * 1024 * 1024


class AttachmentSettings(Section):
    max_size: ByteSize = Field(default=ByteSize(DEFAULT_MAX_SIZE), ge=1, le=MAX_MAX_SIZE)
    """Largest file (``10MiB``, ``512KiB``, bytes); larger uploads are refused with 413."""
    max_per_case: int = Field(default=DEFAULT_MAX_PER_CASE, ge=1, le=100_000)
    """Attachments one case may hold; one more is refused with 409."""
    directory: Path | None = None
    """Store the files here (mode 0700, files 0600) instead of in the database."""

    @field_validator("directory")
    @classmethod
    def _check_directory(cls, directory: Path | None) -> Path | None:
        if directory is not None and not directory.is_absolute():
            raise ValueError("must be an absolute path")
        return directory
