"""The stored escalation tiers, remembered for a few seconds.

Every read of a case shows its escalation as the customer's tier allows
(``caseapi.oncall.visible``), so every read would otherwise read the tier table as
well: a statement per request for something that changes when an organisation file
is loaded. Tiers read are trusted for ``ttl`` seconds (5 s by default, as verified
API keys are): a change made by another process (``nms run`` loading the
organisation file while ``nms api`` serves) shows here within ``ttl``; ``forget``
makes a change made through this process show at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.oncall import store as oncall_store
from caseapi.oncall.matrix import Tier

#: Seconds stored tiers are trusted without reading them again.
DEFAULT_TIERS_TTL: Final = 5.0


class TiersCache:
    """The stored escalation tiers by name, read at most once per ``ttl``."""

    def __init__(
        self, *, ttl: float = DEFAULT_TIERS_TTL, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        """Create an empty cache.

        Args:
            ttl: Seconds tiers read are trusted (0: read them every time); bounds how
                late a change made by another process shows.
            monotonic: Seconds for ``ttl`` (tests pass a fake).
        """
        if ttl < 0:
            raise ValueError("ttl must not be negative")
        self._ttl = ttl
        self._monotonic = monotonic
        self._tiers: dict[str, Tier] | None = None
        self._until = 0.0
        # Counts ``forget`` calls: a read that overlapped one keeps nothing (it may
        # have read the rows before the change committed).
        self._forgotten = 0

    async def get(self, session: AsyncSession) -> dict[str, Tier]:
        """The tiers, from ``session`` unless read within ``ttl``."""
        if self._tiers is not None and self._monotonic() < self._until:
            return self._tiers
        forgotten = self._forgotten
        tiers = await oncall_store.tiers(session)
        if self._ttl > 0 and forgotten == self._forgotten:
            self._tiers, self._until = tiers, self._monotonic() + self._ttl
        return tiers

    def forget(self) -> None:
        """Read the tiers again next time (they were just changed)."""
        self._forgotten += 1
        self._tiers = None
