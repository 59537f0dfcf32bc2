"""The ``audit.*`` settings."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from pydantic import field_validator

from caseapi.core.config import Section
from caseapi.core.durations import Duration

DEFAULT_RETENTION: Final = timedelta(days=400)
#: Shorter is a typo (``400m`` for ``400d``), and would purge yesterday's actions.
MIN_RETENTION: Final = timedelta(days=1)


class AuditSettings(Section):
    retention: Duration = DEFAULT_RETENTION
    """How long audit rows are kept; the case ticker deletes older ones."""

    @field_validator("retention")
    @classmethod
    def _check_retention(cls, value: timedelta) -> timedelta:
        if value < MIN_RETENTION:
            raise ValueError("must be at least 1d")
        return value
