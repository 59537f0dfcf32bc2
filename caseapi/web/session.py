"""Who is signed in to the console: the session and the store that keeps sessions.

A ``WebSession`` carries the same ``Principal`` an API key would (role and, for a
customer contact, the one customer), so pages call the services with the caller the
``/v1`` routes would pass. ``SessionStore`` is what ``caseapi.web.deps`` needs of the
sessions; the users domain provides the database-backed store (revocable rows, idle
and absolute expiry). ``MemorySessionStore`` keeps sessions in memory for an app built
without one (unit tests of pages).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Final, Protocol

from caseapi.auth.principal import Principal

#: The cookie that carries the session's secret token.
SESSION_COOKIE: Final = "nms_session"
#: The form field every state-changing form carries (``caseapi.web.deps.CsrfChecked``).
CSRF_FIELD: Final = "csrf_token"


@dataclass(frozen=True, slots=True)
class WebSession:
    """A signed-in person, as the pages see them."""

    #: The user's row id (``None`` only for sessions made outside the users table).
    user_id: int | None
    email: str
    display_name: str
    #: The caller the services are given: role, tenancy, timeline actor.
    principal: Principal
    #: Bound to this session; every state-changing form must send it back.
    csrf_token: str
    #: IANA zone and language of the reader (every time on a page is shown in it).
    timezone: str = "UTC"
    language: str = "en"

    @property
    def is_staff(self) -> bool:
        return self.principal.is_staff

    @property
    def is_customer(self) -> bool:
        return self.principal.is_customer


class SessionStore(Protocol):
    """Sessions by their cookie token."""

    async def lookup(self, token: str) -> WebSession | None:
        """The live session of ``token`` (``None``: unknown, expired or revoked).

        A store with idle expiry extends the session here.
        """
        ...

    async def revoke(self, token: str) -> None:
        """End the session of ``token`` (nothing when unknown)."""
        ...


class MemorySessionStore:
    """Sessions in a dict, without expiry: for apps built without the users store."""

    def __init__(self) -> None:
        self._sessions: dict[str, WebSession] = {}

    def open(self, session: WebSession) -> str:
        """Keep ``session`` and return the token for its cookie."""
        token = secrets.token_urlsafe(32)
        self._sessions[token] = session
        return token

    async def lookup(self, token: str) -> WebSession | None:
        return self._sessions.get(token)

    async def revoke(self, token: str) -> None:
        self._sessions.pop(token, None)


def new_csrf_token() -> str:
    """A fresh random CSRF token (256 bits)."""
    return secrets.token_urlsafe(32)
