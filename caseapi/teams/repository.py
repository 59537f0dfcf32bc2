"""Reading the organisation tables (teams, members, routing rules)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, ScalarSelect, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from caseapi.cases.models import Case
from caseapi.teams.models import Member, RoutingRuleRow, Team, TeamMember
from caseapi.teams.routing import RoutingRule


async def list_teams(session: AsyncSession, *, active_only: bool = True) -> list[Team]:
    """Teams by id (only those in the current organisation file unless told)."""
    stmt = select(Team).order_by(Team.id)
    if active_only:
        stmt = stmt.where(Team.active.is_(True))
    return list((await session.scalars(stmt)).all())


async def get_team(session: AsyncSession, team_id: str) -> Team | None:
    """Team ``team_id`` (also one no longer in the file), or ``None``."""
    return await session.get(Team, team_id)


async def team_members(session: AsyncSession, team_id: str) -> list[Member]:
    """The active members of ``team_id`` in the file's order."""
    stmt = (
        select(Member)
        .join(TeamMember, TeamMember.member_id == Member.id)
        .where(TeamMember.team_id == team_id, Member.active.is_(True))
        .order_by(TeamMember.position)
    )
    return list((await session.scalars(stmt)).all())


def member_id_of(email: ColumnElement[str] | InstrumentedAttribute[str]) -> ScalarSelect[str]:
    """The id of the active member whose e-mail is ``email`` (a lower-cased address;
    the member's in any case), as a subquery another statement reads in passing."""
    return (
        select(Member.id)
        .where(func.lower(Member.email) == email, Member.active.is_(True))
        .order_by(Member.id)
        .limit(1)
        .scalar_subquery()
    )


async def member_id_by_email(session: AsyncSession, email: str) -> str | None:
    """The id of the active member whose e-mail is ``email`` (any case), if any."""
    found: str | None = (
        await session.execute(select(member_id_of(literal(email.lower()))))
    ).scalar()
    return found


async def member_by_id(session: AsyncSession, member_id: str) -> Member | None:
    """Member ``member_id`` if in the current organisation file, else ``None``."""
    member = await session.get(Member, member_id)
    return member if member is not None and member.active else None


async def team_of_case(session: AsyncSession, case_id: int) -> Team | None:
    """The team case ``case_id`` is with (``None``: none, or no such case)."""
    stmt = select(Team).join(Case, Case.team_id == Team.id).where(Case.id == case_id)
    return (await session.scalars(stmt)).first()


async def routing_rules(session: AsyncSession) -> list[RoutingRule]:
    """The rules in force, first first (empty: no organisation)."""
    rows = (await session.scalars(select(RoutingRuleRow).order_by(RoutingRuleRow.position))).all()
    return [
        RoutingRule(
            team=row.team_id, when={k: frozenset(v) for k, v in (row.conditions or {}).items()}
        )
        for row in rows
    ]
