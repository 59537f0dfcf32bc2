"""Console accounts and their sessions.

``users.email`` is stored lower-cased and unique: one account per address, whatever
the case it is typed in. ``customer_id`` carries no foreign key, like
``api_keys.customer_id``: the inventory owns ``customers``; the service checks the
customer exists when the account is made. Of a session only the SHA-256 of its
cookie token is stored (a leaked table opens no session), with its own CSRF token.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from caseapi.core.base import Base, UTCDateTime

EMAIL_LENGTH = 254
NAME_LENGTH = 200


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(EMAIL_LENGTH), unique=True)
    display_name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    #: Argon2id PHC string (``$argon2id$v=19$m=...``): parameters travel with the hash.
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[str | None] = mapped_column(String(64), index=True)
    timezone: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UserSession(Base):
    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Hex SHA-256 of the cookie's token.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: Last use, written at most once a ``TOUCH_INTERVAL``: the idle expiry counts from it.
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: The absolute end (sign-in + ``api.sessions.lifetime``).
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
