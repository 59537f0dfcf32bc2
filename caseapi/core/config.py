"""Shared pieces of the settings sections, and the database section.

Each domain declares the settings it owns as a pydantic section (``CaseSettings`` in
``caseapi.cases.config``, ...); ``caseapi.settings`` gathers them. A section forbids
unknown keys and is frozen, so whoever composes them into a top-level settings
object reports a typo by its dotted key.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: The API's request body limit by default: far above any body it takes (an RFO's
#: five text fields of at most 20,000 characters each), far below what would hurt.
DEFAULT_MAX_BODY: Final = 1024 * 1024


class Section(BaseModel):
    """Base of every settings section: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(Section):
    url: str = Field(default="sqlite+aiosqlite:///./nms.db", repr=False)  # may carry a password

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with 'sqlite+aiosqlite://' or 'postgresql+asyncpg://'")
        return url


def check_mqtt_url(url: str) -> str:
    """Return ``url`` if it is ``mqtt://`` or ``mqtts://`` with a host and a valid port.

    Raises:
        ValueError: Names the URL and what is wrong with it.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"{url!r} is not an MQTT URL such as mqtt://host:1883")
    try:
        parts.port  # noqa: B018 - raises for a bad port
    except ValueError as exc:
        raise ValueError(f"{url!r}: {exc}") from None
    return url
