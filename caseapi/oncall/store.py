"""Reading and replacing the on-call tables (rotations, overrides, tiers).

``replace_all`` is the sync of the organisation file's ``oncall`` and ``escalation``
sections (in the caller's transaction: the whole file or nothing); ``rotation_for``
and ``tiers`` rebuild the pure models the alert service decides with.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.cases.calendar import WEEKDAYS
from caseapi.oncall.matrix import Level, LevelContacts, Tier
from caseapi.oncall.models import EscalationTierRow, OncallOverrideRow, OncallRotationRow
from caseapi.oncall.rotation import Kind, Override, Rotation, parse_handoff
from caseapi.oncall.spec import OncallModel


async def replace_all(session: AsyncSession, model: OncallModel) -> None:
    """Make the tables say exactly what ``model`` says (caller commits)."""
    await replace_rotations(session, model.rotations.values())
    await replace_tiers(session, model.tiers.values())


async def replace_rotations(session: AsyncSession, rotations: Iterable[Rotation]) -> None:
    """Replace every stored rotation and override with ``rotations`` (caller commits)."""
    await session.execute(delete(OncallOverrideRow))
    await session.execute(delete(OncallRotationRow))
    await session.flush()
    rotations = list(rotations)
    for rotation in rotations:
        handoff = f"{rotation.handoff:%H:%M}"
        if rotation.kind == "weekly":
            handoff = f"{WEEKDAYS[rotation.start.weekday()]} {handoff}"
        session.add(
            OncallRotationRow(
                team_id=rotation.team,
                kind=rotation.kind,
                timezone=rotation.tz.key,
                handoff=handoff,
                start=rotation.start,
                order=list(rotation.order),
                ack_within_seconds=int(rotation.ack_within.total_seconds()),
            )
        )
    await session.flush()
    for rotation in rotations:
        for override in rotation.overrides:
            session.add(
                OncallOverrideRow(
                    team_id=rotation.team,
                    member_id=override.member,
                    starts_local=override.start.isoformat(timespec="seconds"),
                    ends_local=override.end.isoformat(timespec="seconds"),
                )
            )
    await session.flush()


async def replace_tiers(session: AsyncSession, tiers: Iterable[Tier]) -> None:
    """Replace every stored escalation tier with ``tiers`` (caller commits)."""
    await session.execute(delete(EscalationTierRow))
    await session.flush()
    for tier in tiers:
        session.add(
            EscalationTierRow(
                name=tier.name,
                levels={
                    level: {
                        "team": spec.team,
                        "contacts": list(spec.contacts),
                        "management": list(spec.management),
                    }
                    for level, spec in tier.levels.items()
                },
                notify_after={
                    level: int(after.total_seconds()) for level, after in tier.notify_after.items()
                },
                customer_sees=tier.customer_sees,
            )
        )
    await session.flush()


async def configured(session: AsyncSession) -> bool:
    """Whether an organisation file gave any rotation or tier (else: no staff alerts)."""
    for table in (OncallRotationRow.__table__, EscalationTierRow.__table__):
        if (await session.execute(select(1).select_from(table).limit(1))).first() is not None:
            return True
    return False


async def rotation_for(session: AsyncSession, team_id: str) -> Rotation | None:
    """The stored rotation of ``team_id`` (``None``: the team has none)."""
    row = await session.get(OncallRotationRow, team_id)
    if row is None:
        return None
    overrides = (
        await session.scalars(select(OncallOverrideRow).where(OncallOverrideRow.team_id == team_id))
    ).all()
    kind = cast(Kind, row.kind)
    _, handoff = parse_handoff(kind, row.handoff)
    return Rotation(
        team=row.team_id,
        kind=kind,
        tz=ZoneInfo(row.timezone),
        handoff=handoff,
        start=row.start,
        order=tuple(row.order),
        ack_within=timedelta(seconds=row.ack_within_seconds),
        overrides=tuple(
            Override(
                o.member_id,
                datetime.fromisoformat(o.starts_local),
                datetime.fromisoformat(o.ends_local),
            )
            for o in overrides
        ),
    )


async def tiers(session: AsyncSession) -> dict[str, Tier]:
    """Every stored tier by name."""
    rows = (await session.scalars(select(EscalationTierRow))).all()
    return {
        row.name: Tier(
            name=row.name,
            levels={
                cast(Level, level): LevelContacts(
                    team=spec["team"],
                    contacts=tuple(spec.get("contacts", ())),
                    management=tuple(spec.get("management", ())),
                )
                for level, spec in row.levels.items()
            },
            notify_after={
                cast(Level, level): timedelta(seconds=s) for level, s in row.notify_after.items()
            },
            customer_sees="level_and_contact"
            if row.customer_sees == "level_and_contact"
            else "level",
        )
        for row in rows
    }
