"""Console sessions in the database: the ``SessionStore`` of ``caseapi.web``.

A session is a random 256-bit token in the ``nms_session`` cookie; the table keeps
only its SHA-256 (as the on-call ack links do), so a copy of the database opens no
session. Each session has its own CSRF token. A session ends at the first of: its
revocation (sign-out, "sign out everywhere", a password change, the account
disabled or its role changed), ``idle_timeout`` without use, ``lifetime`` after the
sign-in. A disabled account's sessions are refused even if one escaped revocation.

``lookup`` runs on every page view, so it writes at most once a ``TOUCH_INTERVAL``
per session: the idle expiry may then count from up to a minute early, which errs on
the safe side, and pages mostly only read.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.audit import service as audit
from caseapi.audit.enums import AuditAction
from caseapi.auth.principal import Principal, Role
from caseapi.clock import Clock
from caseapi.core.database import session_scope
from caseapi.teams.repository import member_id_by_email
from caseapi.users import repository
from caseapi.users.config import SessionSettings
from caseapi.users.models import User, UserSession
from caseapi.web.session import WebSession, new_csrf_token

#: How stale ``last_seen_at`` may get before a lookup writes it again.
TOUCH_INTERVAL: Final = timedelta(minutes=1)
_TOKEN_BYTES: Final = 32


def token_hash(token: str) -> str:
    """What is stored of a session token (hex SHA-256)."""
    return hashlib.sha256(token.encode()).hexdigest()


def web_session_of(user: User, *, csrf_token: str, member_id: str | None = None) -> WebSession:
    """How the pages see ``user``: their principal carries role and tenancy as an API
    key's would, named by the e-mail address (unique, and stable in the audit log) -
    or, for staff who are a member of the organisation file (same e-mail), by the
    member's id: "Take" then assigns the case to that member, whom the on-call alerts
    of the case (customer replies, breaches) reach."""
    return WebSession(
        user_id=user.id,
        email=user.email,
        display_name=user.display_name,
        principal=Principal(
            key_id=None,
            name=member_id or user.email,
            role=Role(user.role),
            customer_id=user.customer_id,
            user_id=user.id,
        ),
        csrf_token=csrf_token,
        timezone=user.timezone,
        language=user.language,
    )


class DatabaseSessionStore:
    """Sessions as rows of ``user_sessions`` (see the module docstring)."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        settings: SessionSettings | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock
        self.settings = settings or SessionSettings()

    async def open(self, user: User) -> tuple[str, WebSession]:
        """A new session of ``user``: the token for the cookie, and the session.

        Never reuses a token a browser presented (no session fixation): each sign-in
        gets a fresh one. The user's dead sessions are purged here.
        """
        token = secrets.token_urlsafe(_TOKEN_BYTES)
        csrf = new_csrf_token()
        now = self._clock.now()
        async with session_scope(self._sessionmaker, write=True) as session:
            await repository.purge_dead_sessions(
                session,
                user_id=user.id,
                now=now,
                idle_before=now - self.settings.idle_timeout,
            )
            await repository.add_session(
                session,
                row=UserSession(
                    token_hash=token_hash(token),
                    user_id=user.id,
                    csrf_token=csrf,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + self.settings.lifetime,
                    revoked_at=None,
                ),
            )
            member_id = await _member_id(session, user)
            await session.commit()
        return token, web_session_of(user, csrf_token=csrf, member_id=member_id)

    async def lookup(self, token: str) -> WebSession | None:
        """The live session of ``token``, extending its idle expiry."""
        if not token or len(token) > 256:
            return None
        hashed = token_hash(token)
        now = self._clock.now()
        async with session_scope(self._sessionmaker) as session:
            found = await repository.get_live_session(session, token_hash=hashed)
        if found is None:
            return None
        row, user, member_id = found
        if (
            user.disabled
            or now >= row.expires_at
            or now >= row.last_seen_at + self.settings.idle_timeout
        ):
            return None
        if now - row.last_seen_at >= TOUCH_INTERVAL:
            async with session_scope(self._sessionmaker, write=True) as session:
                await repository.touch_session(session, session_id=row.id, at=now)
                await session.commit()
        return web_session_of(user, csrf_token=row.csrf_token, member_id=member_id)

    async def revoke(self, token: str) -> None:
        """End the session of ``token`` (sign-out; ``user.logout`` in the audit log)."""
        now = self._clock.now()
        async with session_scope(self._sessionmaker, write=True) as session:
            user_id = await repository.revoke_session(session, token_hash=token_hash(token), at=now)
            if user_id is not None:
                user = await repository.get_user(session, user_id=user_id)
                await audit.record(
                    session,
                    AuditAction.USER_LOGOUT,
                    at=now,
                    target_id=user_id,
                    customer_id=user.customer_id if user is not None else None,
                )
            await session.commit()

    async def revoke_all(self, user_id: int) -> int:
        """End every session of ``user_id`` ("sign out everywhere"); how many."""
        now = self._clock.now()
        async with session_scope(self._sessionmaker, write=True) as session:
            ended = await repository.revoke_user_sessions(session, user_id=user_id, at=now)
            user = await repository.get_user(session, user_id=user_id)
            await audit.record(
                session,
                AuditAction.USER_SIGNOUT_ALL,
                at=now,
                target_id=user_id,
                customer_id=user.customer_id if user is not None else None,
                details={"sessions_ended": ended},
            )
            await session.commit()
        return ended


async def _member_id(session: AsyncSession, user: User) -> str | None:
    if user.customer_id is not None:
        return None  # customer contacts are never members of the support organisation
    return await member_id_by_email(session, user.email)
