"""Reads of the organisation for the API, and the checks of a forward."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.cases.enums import EscalationLevel
from caseapi.cases.errors import CaseValidationError
from caseapi.cases.models import Case
from caseapi.cases.snapshot import HandOff
from caseapi.core.database import session_scope
from caseapi.teams import repository
from caseapi.teams.errors import TeamNotFoundError
from caseapi.teams.models import Member, Team


@dataclass(frozen=True, slots=True)
class ForwardTarget:
    """Where a forward sends a case: a team (with its level) and / or a person."""

    team: str | None
    assignee: str | None
    #: The team's level (``None``: a team outside the ladder, or no team).
    level: EscalationLevel | None

    def handoff(self, *, actor: str, summary: dict[str, Any]) -> Callable[[Case], HandOff]:
        """The hand-off of a case to this target: the case takes the team's level
        when it has one (``CaseService.act``'s event)."""

        def event(case: Case) -> HandOff:
            return HandOff(
                actor=actor,
                to_level=self.level or case.escalation_level,
                assignee=self.assignee,
                summary=summary,
                team=self.team,
            )

        return event


async def list_teams(sessionmaker: async_sessionmaker[AsyncSession]) -> list[Team]:
    """The teams of the current organisation file."""
    async with session_scope(sessionmaker) as session:
        return await repository.list_teams(session)


async def get_team(
    sessionmaker: async_sessionmaker[AsyncSession], team_id: str
) -> tuple[Team, list[Member]]:
    """Team ``team_id`` and its members.

    Raises:
        TeamNotFoundError: No such team in the current file.
    """
    async with session_scope(sessionmaker) as session:
        team = await repository.get_team(session, team_id)
        if team is None or not team.active:
            raise TeamNotFoundError(team_id)
        return team, await repository.team_members(session, team_id)


async def forward_target(
    sessionmaker: async_sessionmaker[AsyncSession], *, team: str | None, assignee: str | None
) -> ForwardTarget:
    """Check a forward's ``team`` and ``assignee`` against the organisation.

    Raises:
        CaseValidationError: Neither given, an unknown team or member, or an assignee
            who is not in the team.
    """
    if team is None and assignee is None:
        raise CaseValidationError(
            "team", "give a team, an assignee or both", others={"assignee": "or this"}
        )
    async with session_scope(sessionmaker) as session:
        level = None
        if team is not None:
            row = await repository.get_team(session, team)
            if row is None or not row.active:
                raise CaseValidationError("team", f"no team {team!r} in the organisation")
            if row.level in EscalationLevel.__members__:
                level = EscalationLevel(row.level)
        if assignee is not None:
            if await repository.member_by_id(session, assignee) is None:
                raise CaseValidationError("assignee", f"no member {assignee!r} in the organisation")
            if team is not None:
                ids = {m.id for m in await repository.team_members(session, team)}
                if assignee not in ids:
                    raise CaseValidationError(
                        "assignee", f"{assignee!r} is not a member of team {team!r}"
                    )
    return ForwardTarget(team=team, assignee=assignee, level=level)
