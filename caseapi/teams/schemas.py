"""HTTP shapes of teams (staff only: customers never see how support is organised)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from caseapi.teams.models import Member, Team


class MemberPublic(BaseModel):
    """A person of support (``id``: the staff name, as in ``engineer:<id>``)."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: str
    name: str
    email: str
    timezone: str
    language: str


class TeamPublic(BaseModel):
    """A team; ``members`` only on ``GET /v1/teams/{id}``."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    level: str
    timezone: str
    calendar: str | None
    expertise: dict[str, list[str]]
    members: list[MemberPublic] | None = None

    @classmethod
    def from_team(cls, team: Team, members: list[Member] | None = None) -> TeamPublic:
        """Build from a ``Team`` (and its members, in the file's order)."""
        expertise: dict[str, Any] = dict(team.expertise or {})
        return cls(
            id=team.id,
            name=team.name,
            level=team.level,
            timezone=team.timezone,
            calendar=team.calendar,
            expertise={k: list(v) for k, v in expertise.items()},
            members=None if members is None else [MemberPublic.model_validate(m) for m in members],
        )


class TeamsPublic(BaseModel):
    """Every team of the current organisation file, by id."""

    data: list[TeamPublic]
    count: int
