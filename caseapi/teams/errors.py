"""Errors of the support organisation API."""

from __future__ import annotations

from caseapi.core.errors import NotFoundError


class TeamNotFoundError(NotFoundError):
    """No team (in the current organisation file) has id ``team_id``."""

    code = "team_not_found"

    def __init__(self, team_id: str) -> None:
        self.team_id = team_id
        super().__init__(f"no team with id {team_id!r}")
