"""Storing the organisation file: teams, members and routing rules, all or nothing.

``nms`` validates the file and hands records to ``sync_organisation``; this writes
them in ONE transaction with whatever other sections' writes (``also``) the caller
passes, so a bad file (or a failing write) leaves the stored organisation as it was.
Teams and members no longer in the file are kept, inactive (cases keep their team).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.core.database import session_scope
from caseapi.core.upsert import upsert
from caseapi.teams.models import Member, RoutingRuleRow, Team, TeamMember
from caseapi.teams.routing import FACTS

#: A team's ``level``: who it is in the escalation ladder (``none``: field dispatch,
#: account management).
TEAM_LEVELS: Final = ("L1", "L2", "L3", "none")
#: The expertise tags of a team.
EXPERTISE_KEYS: Final = ("services", "regions", "models", "subjects")

#: Another section's write (on-call rotations, escalation tiers), run in the sync's
#: transaction after teams and members are stored.
OrganisationWrite = Callable[[AsyncSession], Awaitable[object]]


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberRecord:
    """A person of support (``id``: the staff name, as in ``engineer:<id>``)."""

    id: str
    name: str
    email: str
    timezone: str
    language: str = "en"
    webhook: str | None = None
    mqtt: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TeamRecord:
    """A team and its members' ids (each a ``MemberRecord`` of the same sync)."""

    id: str
    name: str
    level: str
    timezone: str
    calendar: str | None = None
    members: Sequence[str] = ()
    expertise: Mapping[str, Sequence[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleRecord:
    """A routing rule: ``team`` takes cases matching ``when`` (empty: every case)."""

    team: str
    when: Mapping[str, Sequence[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OrganisationDiff:
    """What a sync changed (ids)."""

    teams_added: tuple[str, ...] = ()
    teams_removed: tuple[str, ...] = ()
    members_added: tuple[str, ...] = ()
    members_removed: tuple[str, ...] = ()
    rules: int = 0

    def summary(self) -> str:
        """One line for the log."""
        return (
            f"teams +{len(self.teams_added)} -{len(self.teams_removed)}, "
            f"members +{len(self.members_added)} -{len(self.members_removed)}, "
            f"{self.rules} routing rules"
        )


def check_records(
    teams: Sequence[TeamRecord], members: Sequence[MemberRecord], rules: Sequence[RuleRecord]
) -> None:
    """The invariants the tables rely on (``nms`` checks the file; this guards the API).

    Raises:
        ValueError: A duplicate id, an unknown member or team, a bad level or fact,
            or rules without a catch-all last.
    """
    member_ids = [m.id for m in members]
    team_ids = [t.id for t in teams]
    for kind, ids in (("member", member_ids), ("team", team_ids)):
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate {kind} ids")
    for team in teams:
        if team.level not in TEAM_LEVELS:
            raise ValueError(f"team {team.id!r}: level must be one of {', '.join(TEAM_LEVELS)}")
        unknown = sorted(set(team.members) - set(member_ids))
        if unknown:
            raise ValueError(f"team {team.id!r}: unknown members {unknown}")
    for index, rule in enumerate(rules):
        if rule.team not in team_ids:
            raise ValueError(f"routing[{index}].team: unknown team {rule.team!r}")
        bad = sorted(set(rule.when) - set(FACTS))
        if bad:
            raise ValueError(f"routing[{index}].when: unknown facts {bad}")
    if rules and rules[-1].when:
        raise ValueError("routing: the last rule must match every case (no `when`)")
    if teams and not rules:
        raise ValueError("routing: teams need routing rules (at least a catch-all)")


async def sync_organisation(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    teams: Sequence[TeamRecord],
    members: Sequence[MemberRecord],
    rules: Sequence[RuleRecord],
    also: Sequence[OrganisationWrite] = (),
) -> OrganisationDiff:
    """Make the stored organisation match the records, in one transaction.

    Existing cases keep their team: rules apply to cases created from now on.

    Raises:
        ValueError: The records break an invariant (``check_records``); nothing stored.
    """
    check_records(teams, members, rules)
    async with session_scope(sessionmaker, write=True) as session:
        old_teams = set((await session.scalars(select(Team.id).where(Team.active))).all())
        old_members = set((await session.scalars(select(Member.id).where(Member.active))).all())
        await session.execute(delete(TeamMember))
        await session.execute(delete(RoutingRuleRow))
        await upsert(session, Member.__table__, [_member_row(m) for m in members], ["id"])
        await upsert(session, Team.__table__, [_team_row(t) for t in teams], ["id"])
        new_teams = {t.id for t in teams}
        new_members = {m.id for m in members}
        await session.execute(update(Team).where(Team.id.not_in(new_teams)).values(active=False))
        await session.execute(
            update(Member).where(Member.id.not_in(new_members)).values(active=False)
        )
        links = [
            {"team_id": t.id, "member_id": m, "position": i}
            for t in teams
            for i, m in enumerate(dict.fromkeys(t.members))
        ]
        if links:
            await session.execute(insert(TeamMember), links)
        if rules:
            await session.execute(
                insert(RoutingRuleRow),
                [
                    {
                        "position": i,
                        "team_id": r.team,
                        "conditions": {k: list(v) for k, v in r.when.items()},
                    }
                    for i, r in enumerate(rules)
                ],
            )
        for write in also:
            await write(session)
        await session.commit()
    return OrganisationDiff(
        teams_added=tuple(sorted(new_teams - old_teams)),
        teams_removed=tuple(sorted(old_teams - new_teams)),
        members_added=tuple(sorted(new_members - old_members)),
        members_removed=tuple(sorted(old_members - new_members)),
        rules=len(rules),
    )


def _member_row(member: MemberRecord) -> dict[str, Any]:
    return {
        "id": member.id,
        "name": member.name,
        "email": member.email,
        "timezone": member.timezone,
        "language": member.language,
        "webhook": member.webhook,
        "mqtt": member.mqtt,
        "active": True,
    }


def _team_row(team: TeamRecord) -> dict[str, Any]:
    return {
        "id": team.id,
        "name": team.name,
        "level": team.level,
        "timezone": team.timezone,
        "calendar": team.calendar,
        "expertise": {k: list(team.expertise.get(k, ())) for k in EXPERTISE_KEYS},
        "active": True,
    }
