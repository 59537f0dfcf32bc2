"""HTTP routes for teams: staff read the organisation (customers never do).

Forwarding a case to a team or person lives with the case routes
(``POST /v1/cases/{ref}/forward``).
"""

from __future__ import annotations

from fastapi import APIRouter

from caseapi.api.openapi import errors
from caseapi.auth.deps import StaffPrincipal
from caseapi.core.deps import SessionmakerDep
from caseapi.teams import service
from caseapi.teams.errors import TeamNotFoundError
from caseapi.teams.schemas import TeamPublic, TeamsPublic

router = APIRouter(prefix="/v1/teams", tags=["teams"])


@router.get("")
async def list_teams(sessionmaker: SessionmakerDep, principal: StaffPrincipal) -> TeamsPublic:
    """List the teams of the organisation file, by id."""
    teams = [TeamPublic.from_team(team) for team in await service.list_teams(sessionmaker)]
    return TeamsPublic(data=teams, count=len(teams))


@router.get("/{team_id}", responses=errors(TeamNotFoundError))
async def get_team(
    team_id: str, sessionmaker: SessionmakerDep, principal: StaffPrincipal
) -> TeamPublic:
    """Get one team with its members and expertise."""
    team, members = await service.get_team(sessionmaker, team_id)
    return TeamPublic.from_team(team, members)
