"""Write transactions that survive losing a race for a unique key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.core.database import session_scope

T = TypeVar("T")

#: A creator that loses the race for a unique key (a dedup key, a reference, an
#: Idempotency-Key) gets an IntegrityError, and the retry finds the winner's row.
#: Two tries are enough: after one loss the winner's row is committed and visible.
WRITE_ATTEMPTS: Final = 3


async def write_retrying(
    sessionmaker: async_sessionmaker[AsyncSession],
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    attempts: int = WRITE_ATTEMPTS,
) -> T:
    """Run ``work`` in a write transaction and commit; retry it after an IntegrityError.

    ``work`` runs again from the start in a fresh transaction, so it must read what
    it needs inside it (the winner's row is there the second time).

    Raises:
        IntegrityError: Every attempt lost (or the conflict was not a race).
        DatabaseUnavailableError: The database cannot be reached.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(1, attempts + 1):
        try:
            async with session_scope(sessionmaker, write=True) as session:
                result = await work(session)
                await session.commit()
                return result
        except IntegrityError:
            # Only PostgreSQL lets writers race this far (SQLite queues them up front).
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")
