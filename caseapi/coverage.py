"""Public: which NTUs maintenance covers right now (the detector's suppression input).

``mute``: no proactive case is opened for the NTU until the window ends (probing goes
on, so recovery is seen); ``skip``: the NTU is not probed either.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.core.database import session_scope
from caseapi.maintenance.repository import Coverage, active_coverage


async def maintenance_coverage(
    sessionmaker: async_sessionmaker[AsyncSession], *, at: datetime
) -> dict[str, Coverage]:
    """NTU id -> its coverage by the windows active at ``at`` (not cancelled, started, not ended).

    Raises:
        DatabaseUnavailableError: The database cannot be reached.
    """
    async with session_scope(sessionmaker) as session:
        return await active_coverage(session, at=at)


__all__ = ["Coverage", "maintenance_coverage"]
