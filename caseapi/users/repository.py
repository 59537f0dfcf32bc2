"""SQL for users and their sessions. Callers own the session and the transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.teams.repository import member_id_of
from caseapi.users.models import User, UserSession


async def add_user(session: AsyncSession, *, user: User) -> User:
    """Insert ``user`` and flush (the unique e-mail is checked here)."""
    session.add(user)
    await session.flush()
    return user


async def get_user(session: AsyncSession, *, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_user_by_email(session: AsyncSession, *, email: str) -> User | None:
    """The user with ``email`` (already lower-cased by the caller)."""
    return (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()


async def list_users(session: AsyncSession) -> list[User]:
    """Every user, by e-mail address."""
    return list((await session.execute(select(User).order_by(User.email))).scalars())


async def add_session(session: AsyncSession, *, row: UserSession) -> UserSession:
    session.add(row)
    await session.flush()
    return row


async def get_live_session(
    session: AsyncSession, *, token_hash: str
) -> tuple[UserSession, User, str | None] | None:
    """The unrevoked session of ``token_hash`` with its user and, for staff, the id
    of the organisation's member with the user's e-mail (expiry is the caller's).

    One statement: every page view asks.
    """
    member = case((User.customer_id.is_(None), member_id_of(User.email)), else_=None)
    stmt = (
        select(UserSession, User, member)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == token_hash, UserSession.revoked_at.is_(None))
    )
    row = (await session.execute(stmt)).one_or_none()
    return None if row is None else (row[0], row[1], row[2])


async def touch_session(session: AsyncSession, *, session_id: int, at: datetime) -> None:
    await session.execute(
        update(UserSession).where(UserSession.id == session_id).values(last_seen_at=at)
    )


async def revoke_session(session: AsyncSession, *, token_hash: str, at: datetime) -> int | None:
    """Revoke the session of ``token_hash``; its user's id, or ``None`` if none was live."""
    stmt = (
        update(UserSession)
        .where(UserSession.token_hash == token_hash, UserSession.revoked_at.is_(None))
        .values(revoked_at=at)
        .returning(UserSession.user_id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def revoke_user_sessions(
    session: AsyncSession, *, user_id: int, at: datetime, keep_token_hash: str | None = None
) -> int:
    """Revoke every live session of ``user_id`` (but ``keep_token_hash``'s); how many."""
    stmt = update(UserSession).where(
        UserSession.user_id == user_id, UserSession.revoked_at.is_(None)
    )
    if keep_token_hash is not None:
        stmt = stmt.where(UserSession.token_hash != keep_token_hash)
    result = await session.execute(stmt.values(revoked_at=at))
    return int(getattr(result, "rowcount", 0) or 0)


async def purge_dead_sessions(
    session: AsyncSession, *, user_id: int, now: datetime, idle_before: datetime
) -> None:
    """Delete ``user_id``'s sessions that are revoked or expired (kept out of the table
    so it does not grow with every sign-in)."""
    await session.execute(
        delete(UserSession).where(
            UserSession.user_id == user_id,
            or_(
                UserSession.revoked_at.is_not(None),
                UserSession.expires_at <= now,
                UserSession.last_seen_at <= idle_before,
            ),
        )
    )
