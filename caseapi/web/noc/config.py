"""The ``board.*`` settings: the NOC board and the change stream of the live pages."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator, model_validator

from caseapi.core.config import Section
from caseapi.core.durations import Duration, positive


class BoardSettings(Section):
    grafana_url: str | None = None
    """Base URL of the Grafana that serves ``dashboards/grafana`` (e.g.
    ``https://grafana.example.net``); the board links to its dashboards. None: no links."""
    events_poll: Duration = timedelta(seconds=1)
    """How often the one change watcher of a process looks at the database."""
    events_heartbeat: Duration = timedelta(seconds=15)
    """A comment line on every idle stream this often (proxies drop silent connections)."""
    events_max_streams: int = Field(default=200, ge=1, le=100_000)
    """Open ``/events`` streams one process serves; the next ones get 503."""

    @field_validator("grafana_url")
    @classmethod
    def _check_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r} is not an http:// or https:// URL")
        return url.rstrip("/")

    @model_validator(mode="after")
    def _check(self) -> BoardSettings:
        positive(self.events_poll)
        positive(self.events_heartbeat)
        return self
