"""The ``api.sessions.*`` settings: how long a console session lives."""

from __future__ import annotations

from datetime import timedelta

from pydantic import field_validator, model_validator

from caseapi.core.config import Section
from caseapi.core.durations import Duration, positive


class SessionSettings(Section):
    """Console sessions (``api.sessions``): idle and absolute expiry."""

    idle_timeout: Duration = timedelta(minutes=30)
    """A session not used for this long ends (each page view extends it)."""
    lifetime: Duration = timedelta(hours=12)
    """A session ends this long after its sign-in, however busy."""

    @field_validator("idle_timeout", "lifetime")
    @classmethod
    def _check_positive(cls, value: timedelta) -> timedelta:
        return positive(value)

    @model_validator(mode="after")
    def _idle_within_lifetime(self) -> SessionSettings:
        if self.idle_timeout > self.lifetime:
            raise ValueError("idle_timeout must not be longer than lifetime")
        return self
