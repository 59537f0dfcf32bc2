"""SQL for RFO versions. Callers own the session and the transaction."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.rfo.models import RfoVersion


async def add_version(session: AsyncSession, *, row: RfoVersion) -> RfoVersion:
    """Insert a version and flush (the unique (case, version) pair is checked here)."""
    session.add(row)
    await session.flush()
    return row


async def latest_version(
    session: AsyncSession, *, case_id: int, published_only: bool = False
) -> RfoVersion | None:
    """Return the newest version of a case's RFO (the newest published one if asked)."""
    stmt = select(RfoVersion).where(RfoVersion.case_id == case_id)
    if published_only:
        stmt = stmt.where(RfoVersion.published_at.is_not(None))
    stmt = stmt.order_by(RfoVersion.version.desc()).limit(1)
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_version(session: AsyncSession, *, case_id: int, version: int) -> RfoVersion | None:
    """Return version ``version`` of a case's RFO."""
    stmt = select(RfoVersion).where(RfoVersion.case_id == case_id, RfoVersion.version == version)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_versions(session: AsyncSession, *, case_id: int) -> list[RfoVersion]:
    """Return every version of a case's RFO, newest first."""
    stmt = (
        select(RfoVersion).where(RfoVersion.case_id == case_id).order_by(RfoVersion.version.desc())
    )
    return list((await session.execute(stmt)).scalars())
