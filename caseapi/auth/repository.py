"""SQL for API keys. Callers own the session and the transaction."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.auth.models import ApiKey


async def add_key(session: AsyncSession, *, key: ApiKey) -> ApiKey:
    """Insert ``key`` and flush (the unique prefix is checked here)."""
    session.add(key)
    await session.flush()
    return key


async def get_key_by_prefix(session: AsyncSession, *, prefix: str) -> ApiKey | None:
    """Return the key whose public prefix is ``prefix``."""
    stmt = select(ApiKey).where(ApiKey.prefix == prefix)
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_key(session: AsyncSession, *, key_id: int) -> ApiKey | None:
    """Return the key with id ``key_id``."""
    return await session.get(ApiKey, key_id)


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    """Return every key (revoked and expired ones too), oldest first."""
    return list((await session.execute(select(ApiKey).order_by(ApiKey.id))).scalars())
