"""Console accounts: creation, the sign-in check, passwords, roles, preferences.

Staff accounts have the roles ``engineer``, ``noc`` or ``admin``; a customer contact
has ``customer`` and exactly one existing customer, the same tenancy as a customer
API key (``caseapi.auth.principal``). There are no ``service`` accounts: machines use
API keys.

Passwords are hashed with Argon2id in a worker thread (tens of milliseconds of CPU by
design, which must not stall the event loop). An unknown e-mail is checked against a
dummy hash, so that it takes as long as a wrong password: the time does not tell
which accounts exist, and neither does the error (``LoginFailedError`` has one
message). Changing a password or disabling an account ends its sessions in the same
transaction.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from typing import Any, Final

from argon2 import PasswordHasher
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.audit import service as audit
from caseapi.audit.enums import AuditAction, AuditOutcome
from caseapi.auth.principal import Role
from caseapi.clock import Clock
from caseapi.core.database import session_scope
from caseapi.core.localtime import check_zone
from caseapi.customers import repository as customer_repository
from caseapi.users import repository
from caseapi.users.errors import (
    EmailTakenError,
    LoginFailedError,
    UserNotFoundError,
    UserRequestError,
)
from caseapi.users.models import EMAIL_LENGTH, NAME_LENGTH, User
from caseapi.users.passwords import check_password, production_hasher, verify

#: Roles a person may have (``service`` is for API keys only).
USER_ROLES: Final = (Role.ENGINEER, Role.NOC, Role.ADMIN, Role.CUSTOMER)
LANGUAGES: Final = ("en", "it")


def normalise_email(email: str) -> str:
    """``email`` trimmed and lower-cased, if it looks like an address.

    Raises:
        UserRequestError: Empty, too long, or not ``local@domain``.
    """
    value = email.strip().lower()
    local, at, domain = value.partition("@")
    if (
        not at
        or not local
        or "." not in domain.strip(".")
        or "@" in domain
        or len(value) > EMAIL_LENGTH
        or any(char.isspace() or ord(char) < 0x20 for char in value)
    ):
        raise UserRequestError("email", f"{email[:80]!r} is not an e-mail address")
    return value


def check_name(name: str) -> str:
    value = name.strip()
    if not value:
        raise UserRequestError("display_name", "must not be empty")
    if len(value) > NAME_LENGTH or any(ord(char) < 0x20 for char in value):
        raise UserRequestError("display_name", f"at most {NAME_LENGTH} printable characters")
    return value


def check_role(role: Role | str, customer_id: str | None) -> Role:
    try:
        value = Role(role)
    except ValueError:
        value = None
    if value is None or value not in USER_ROLES:
        allowed = ", ".join(r.value for r in USER_ROLES)
        raise UserRequestError("role", f"{str(role)[:40]!r} is not one of {allowed}")
    if value is Role.CUSTOMER and not customer_id:
        raise UserRequestError("customer", "a customer contact needs the customer's id")
    if value is not Role.CUSTOMER and customer_id:
        raise UserRequestError("customer", f"a {value.value} account belongs to no customer")
    return value


def check_timezone(zone: str) -> str:
    try:
        return check_zone(zone.strip())
    except ValueError as exc:
        raise UserRequestError("timezone", str(exc)) from None


def check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise UserRequestError(
            "language", f"{language[:16]!r} is not one of {', '.join(LANGUAGES)}"
        )
    return language


class UserService:
    """Creates, checks and changes console accounts."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        hasher: PasswordHasher | None = None,
    ) -> None:
        """Create the service.

        Args:
            sessionmaker: Session factory of the case database.
            clock: Source of "now" (creation, last sign-in, session revocation).
            hasher: The Argon2id hasher (``passwords.production_hasher()`` when
                omitted; tests pass ``passwords.cheap_hasher()``).
        """
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._hasher = hasher or production_hasher()
        self._dummy_hash: str | None = None

    @property
    def hasher(self) -> PasswordHasher:
        return self._hasher

    async def _hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def _verify(self, stored: str, password: str) -> bool:
        return await asyncio.to_thread(verify, self._hasher, stored, password)

    # -- accounts -------------------------------------------------------------------

    async def create_user(
        self,
        *,
        email: str,
        display_name: str,
        password: str,
        role: Role | str,
        customer_id: str | None = None,
        timezone: str = "UTC",
        language: str = "en",
    ) -> User:
        """Create an account.

        Raises:
            UserRequestError: A bad field (``field`` names it), including an unknown
                customer; ``WeakPasswordError`` for the password.
            EmailTakenError: The address has an account already.
        """
        address = normalise_email(email)
        user = User(
            email=address,
            display_name=check_name(display_name),
            role=check_role(role, customer_id).value,
            customer_id=customer_id or None,
            timezone=check_timezone(timezone),
            language=check_language(language),
            disabled=False,
            password_hash="",
            created_at=self._clock.now(),
            last_login_at=None,
            password_changed_at=self._clock.now(),
        )
        check_password(password, email=address)
        user.password_hash = await self._hash(password)
        try:
            async with session_scope(self._sessionmaker, write=True) as session:
                if user.customer_id is not None:
                    await self._require_customer(session, user.customer_id)
                if await repository.get_user_by_email(session, email=address) is not None:
                    raise EmailTakenError(address)
                await repository.add_user(session, user=user)
                await self._audit(
                    session,
                    AuditAction.USER_CREATE,
                    user,
                    {"role": user.role, "customer_id": user.customer_id},
                )
                await session.commit()
        except IntegrityError:  # two creations of one address at once
            raise EmailTakenError(address) from None
        return user

    @staticmethod
    async def _require_customer(session: AsyncSession, customer_id: str) -> None:
        if await customer_repository.get_customer(session, customer_id=customer_id) is None:
            raise UserRequestError("customer", f"no customer with id {customer_id!r}")

    async def list_users(self) -> list[User]:
        async with session_scope(self._sessionmaker) as session:
            return await repository.list_users(session)

    async def get_user(self, user_id: int) -> User:
        """Raises: UserNotFoundError."""
        async with session_scope(self._sessionmaker) as session:
            user = await repository.get_user(session, user_id=user_id)
        if user is None:
            raise UserNotFoundError(user_id)
        return user

    async def find_user(self, email: str) -> User:
        """The account of ``email`` (any case). Raises: UserNotFoundError."""
        address = email.strip().lower()
        async with session_scope(self._sessionmaker) as session:
            user = await repository.get_user_by_email(session, email=address)
        if user is None:
            raise UserNotFoundError(address)
        return user

    # -- signing in -----------------------------------------------------------------

    async def authenticate(self, email: str, password: str) -> User:
        """The account of ``email`` if ``password`` is its password and it is enabled.

        Records ``user.login`` (and the last sign-in) on success, a ``refused``
        ``user.login`` on failure; rehashes a password whose hash has parameters
        other than the hasher's.

        Raises:
            LoginFailedError: Unknown e-mail, wrong password, disabled account (one
                message; ``reason`` only for the log).
        """
        address = email.strip().lower()[: EMAIL_LENGTH + 1]
        # Made before the lookup, whoever signs in first: the first unknown address
        # must not be the one attempt that costs two hashes.
        dummy = await self._dummy()
        async with session_scope(self._sessionmaker) as session:
            user = await repository.get_user_by_email(session, email=address)
        if user is None or len(password) > 1024:
            await self._verify(dummy, password[:1024])
            await self._refused("unknown" if user is None else "password", user)
            raise LoginFailedError(reason="unknown", user_id=None)
        if not await self._verify(user.password_hash, password):
            await self._refused("password", user)
            raise LoginFailedError(reason="password", user_id=user.id)
        if user.disabled:
            await self._refused("disabled", user)
            raise LoginFailedError(reason="disabled", user_id=user.id)
        new_hash = (
            await self._hash(password)
            if self._hasher.check_needs_rehash(user.password_hash)
            else None
        )
        async with session_scope(self._sessionmaker, write=True) as session:
            row = await repository.get_user(session, user_id=user.id)
            if row is None:  # deleted meanwhile
                raise LoginFailedError(reason="unknown")
            now = self._clock.now()
            row.last_login_at = now
            if new_hash is not None and row.password_hash == user.password_hash:
                row.password_hash = new_hash
            await self._audit(
                session, AuditAction.USER_LOGIN, row, {"rehashed": new_hash is not None}
            )
            await session.commit()
            return row

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self._hash(secrets.token_urlsafe(16))
        return self._dummy_hash

    async def _refused(self, reason: str, user: User | None) -> None:
        async with session_scope(self._sessionmaker, write=True) as session:
            await audit.record(
                session,
                AuditAction.USER_LOGIN,
                at=self._clock.now(),
                target_id=user.id if user is not None else None,
                customer_id=user.customer_id if user is not None else None,
                details={"reason": reason},
                outcome=AuditOutcome.REFUSED,
            )
            await session.commit()

    # -- changes --------------------------------------------------------------------

    async def change_own_password(
        self, user_id: int, *, current: str, new: str, keep_token_hash: str | None = None
    ) -> User:
        """Change a person's own password; their other sessions end.

        Raises:
            UserRequestError: ``current_password`` is wrong, or the new one is weak.
        """
        user = await self.get_user(user_id)
        if not await self._verify(user.password_hash, current):
            raise UserRequestError("current_password", "is not your current password")
        if new == current:
            raise UserRequestError("new_password", "must differ from the current password")
        return await self._set_password(user, new, keep_token_hash=keep_token_hash)

    async def reset_password(self, user_id: int, *, new: str) -> User:
        """Set an account's password (an admin, ``nms user passwd``); its sessions end.

        Raises:
            UserNotFoundError, WeakPasswordError.
        """
        return await self._set_password(await self.get_user(user_id), new, keep_token_hash=None)

    async def _set_password(self, user: User, new: str, *, keep_token_hash: str | None) -> User:
        try:
            check_password(new, email=user.email)
        except UserRequestError as exc:
            raise UserRequestError("new_password", str(exc).split(": ", 1)[1]) from None
        new_hash = await self._hash(new)
        async with session_scope(self._sessionmaker, write=True) as session:
            row = await self._row(session, user.id)
            now = self._clock.now()
            row.password_hash = new_hash
            row.password_changed_at = now
            ended = await repository.revoke_user_sessions(
                session, user_id=row.id, at=now, keep_token_hash=keep_token_hash
            )
            await self._audit(session, AuditAction.USER_PASSWORD, row, {"sessions_ended": ended})
            await session.commit()
            return row

    async def set_disabled(self, user_id: int, *, disabled: bool, by_user_id: int | None) -> User:
        """Disable (its sessions end at once) or enable an account.

        Raises:
            UserNotFoundError; UserRequestError: an admin disabling their own account.
        """
        if disabled and by_user_id == user_id:
            raise UserRequestError("disabled", "you cannot disable your own account")
        async with session_scope(self._sessionmaker, write=True) as session:
            row = await self._row(session, user_id)
            now = self._clock.now()
            unchanged = row.disabled == disabled
            row.disabled = disabled
            ended = (
                await repository.revoke_user_sessions(session, user_id=row.id, at=now)
                if disabled
                else 0
            )
            await self._audit(
                session,
                AuditAction.USER_UPDATE,
                row,
                {"fields": ["disabled"], "disabled": disabled, "sessions_ended": ended},
                outcome=AuditOutcome.UNCHANGED if unchanged else AuditOutcome.SUCCESS,
            )
            await session.commit()
            return row

    async def set_role(
        self, user_id: int, *, role: Role | str, customer_id: str | None, by_user_id: int | None
    ) -> User:
        """Change an account's role (and customer); its sessions end, so the new role
        applies from the next sign-in and no page keeps the old one's view.

        Raises:
            UserNotFoundError; UserRequestError: a bad role/customer pair, an unknown
            customer, an admin changing their own role.
        """
        new_role = check_role(role, customer_id)
        if by_user_id == user_id:
            raise UserRequestError("role", "you cannot change your own role")
        async with session_scope(self._sessionmaker, write=True) as session:
            row = await self._row(session, user_id)
            if customer_id:
                await self._require_customer(session, customer_id)
            unchanged = row.role == new_role.value and row.customer_id == (customer_id or None)
            row.role = new_role.value
            row.customer_id = customer_id or None
            now = self._clock.now()
            ended = (
                0
                if unchanged
                else await repository.revoke_user_sessions(session, user_id=row.id, at=now)
            )
            await self._audit(
                session,
                AuditAction.USER_UPDATE,
                row,
                {"fields": ["role", "customer_id"], "role": row.role, "sessions_ended": ended},
                outcome=AuditOutcome.UNCHANGED if unchanged else AuditOutcome.SUCCESS,
            )
            await session.commit()
            return row

    async def update_preferences(self, user_id: int, *, timezone: str, language: str) -> User:
        """Change a person's time zone and language.

        Raises:
            UserNotFoundError, UserRequestError.
        """
        zone, lang = check_timezone(timezone), check_language(language)
        async with session_scope(self._sessionmaker, write=True) as session:
            row = await self._row(session, user_id)
            changed = [
                name
                for name, old, new in (
                    ("timezone", row.timezone, zone),
                    ("language", row.language, lang),
                )
                if old != new
            ]
            row.timezone, row.language = zone, lang
            await self._audit(
                session,
                AuditAction.USER_UPDATE,
                row,
                {"fields": changed},
                outcome=AuditOutcome.SUCCESS if changed else AuditOutcome.UNCHANGED,
            )
            await session.commit()
            return row

    # -- helpers --------------------------------------------------------------------

    @staticmethod
    async def _row(session: AsyncSession, user_id: int) -> User:
        row = await repository.get_user(session, user_id=user_id)
        if row is None:
            raise UserNotFoundError(user_id)
        return row

    async def _audit(
        self,
        session: AsyncSession,
        action: AuditAction,
        user: User,
        details: Mapping[str, Any],
        *,
        outcome: AuditOutcome = AuditOutcome.SUCCESS,
    ) -> None:
        await audit.record(
            session,
            action,
            at=self._clock.now(),
            target_id=user.id,
            customer_id=user.customer_id,
            details=details,
            outcome=outcome,
        )
