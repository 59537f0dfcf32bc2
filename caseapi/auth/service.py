"""API keys: creation (the secret is shown once), authentication, listing, revocation.

A key looks like ``nms_`` followed by 43 URL-safe characters (32 random bytes). Its
first 12 characters are its public ``prefix``: stored in clear, unique, used to find
the row and shown in listings. The whole key is stored only as
``SHA-256(salt || key)`` with a random per-key salt.

Why a fast hash and not bcrypt/scrypt/argon2: slow hashes exist to make guessing
*low-entropy* passwords expensive after a database leak. A key carries 256 random
bits, so trying candidate keys against a leaked hash is hopeless at any hash speed,
while a slow hash would add tens of milliseconds to every API request. Hashes are
compared with ``hmac.compare_digest``.

Verified keys are remembered for a few seconds (``cache_ttl``, 5 s by default): an
API request would otherwise open a database session of its own just to find its key
again. What a cached key may do is re-checked on every request where it costs
nothing: its expiry against the clock. Revocation through this service (the API's
``DELETE /v1/apikeys/{id}``) forgets the key at once; a revocation made by another
process (``nms apikey revoke``, another ``nms api`` replica) is honoured here within
``cache_ttl``. Unknown and refused keys are never cached: a new key works at once
and every failure still reaches the database and the rate limiter. The cache is
keyed by a SHA-256 of the presented secret, not by the secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.audit import service as audit
from caseapi.audit.enums import AuditAction, AuditOutcome
from caseapi.auth import repository
from caseapi.auth.errors import ApiKeyNotFoundError, ApiKeyRequestError, AuthenticationError
from caseapi.auth.models import ApiKey
from caseapi.auth.principal import Principal, Role
from caseapi.clock import Clock
from caseapi.core.database import session_scope
from caseapi.core.transaction import write_retrying
from caseapi.customers import repository as customer_repository

KEY_SCHEME: Final = "nms_"
PREFIX_LENGTH: Final = len(KEY_SCHEME) + 8
_SECRET_BYTES: Final = 32
_SALT_BYTES: Final = 16
# A prefix collision (48 random bits) is astronomically rare; ``write_retrying``
# retries one anyway.
#: Seconds a verified key is trusted without reading its row again.
DEFAULT_CACHE_TTL: Final = 5.0
#: Verified keys remembered at most (the oldest is forgotten first).
_CACHE_SIZE: Final = 4096


@dataclass(frozen=True, slots=True)
class _Verified:
    """A key found valid: who it is, when it expires, until when to trust this."""

    principal: Principal
    expires_at: datetime | None
    #: ``monotonic()`` deadline of this entry.
    until: float


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key row and its secret; the secret exists nowhere else after this."""

    key: ApiKey
    secret: str


def hash_secret(secret: str, *, salt: str) -> str:
    """Return the hex SHA-256 of ``salt`` (hex) followed by ``secret``."""
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def key_status(key: ApiKey, *, now: datetime) -> str:
    """``active``, ``expired`` or ``revoked`` at ``now``."""
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


class ApiKeyService:
    """Creates, authenticates, lists and revokes API keys."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        cache_ttl: float = DEFAULT_CACHE_TTL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Create the service.

        Args:
            sessionmaker: Session factory (``caseapi.core.database.make_sessionmaker``).
            clock: Source of "now" for creation, expiry and revocation.
            cache_ttl: Seconds a verified key is trusted without reading its row
                again (0: read it on every request); bounds how late a revocation
                made by another process is honoured here.
            monotonic: Seconds for ``cache_ttl`` (tests pass a fake).
        """
        if cache_ttl < 0:
            raise ValueError("cache_ttl must not be negative")
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._cache_ttl = cache_ttl
        self._monotonic = monotonic
        self._verified: dict[bytes, _Verified] = {}
        # Counts ``forget`` calls: a lookup that overlapped one caches nothing (it may
        # have read the row before the revocation committed).
        self._forgotten = 0
        self._lookups: dict[bytes, asyncio.Future[Principal]] = {}

    @property
    def clock(self) -> Clock:
        """The clock used for expiry checks."""
        return self._clock

    async def create_key(
        self,
        *,
        name: str,
        role: Role,
        customer_id: str | None = None,
        expires_at: datetime | None = None,
        created_by: str,
    ) -> CreatedKey:
        """Create a key and return it with its secret (shown to the caller once).

        Raises:
            ApiKeyRequestError: A customer key without an existing customer, a
                customer given for another role, an empty name, or an expiry in
                the past.
        """
        now = self._clock.now()
        self._validate(
            name=name, role=role, customer_id=customer_id, expires_at=expires_at, now=now
        )

        async def work(session: AsyncSession) -> CreatedKey:
            # A fresh secret per attempt: a retry follows a prefix collision.
            secret = KEY_SCHEME + secrets.token_urlsafe(_SECRET_BYTES)
            salt = secrets.token_hex(_SALT_BYTES)
            key = ApiKey(
                prefix=secret[:PREFIX_LENGTH],
                salt=salt,
                secret_hash=hash_secret(secret, salt=salt),
                name=name.strip(),
                role=role.value,
                customer_id=customer_id,
                created_by=created_by,
                created_at=now,
                expires_at=expires_at,
                revoked_at=None,
            )
            if customer_id is not None:
                await self._require_customer(session, customer_id)
            await repository.add_key(session, key=key)
            await audit.record(
                session,
                AuditAction.APIKEY_CREATE,
                at=now,
                target_id=key.id,
                customer_id=customer_id,
                details={"prefix": key.prefix, "role": role, "expires_at": expires_at},
            )
            return CreatedKey(key=key, secret=secret)

        return await write_retrying(self._sessionmaker, work)

    @staticmethod
    def _validate(
        *,
        name: str,
        role: Role,
        customer_id: str | None,
        expires_at: datetime | None,
        now: datetime,
    ) -> None:
        if not name.strip():
            raise ApiKeyRequestError("name must not be empty")
        if role is Role.CUSTOMER and customer_id is None:
            raise ApiKeyRequestError("a customer key needs customer_id")
        if role is not Role.CUSTOMER and customer_id is not None:
            raise ApiKeyRequestError(f"a {role.value} key is bound to no customer")
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise ApiKeyRequestError("expires_at must be timezone-aware")
            if expires_at <= now:
                raise ApiKeyRequestError("expires_at must be in the future")

    @staticmethod
    async def _require_customer(session: AsyncSession, customer_id: str) -> None:
        if await customer_repository.get_customer(session, customer_id=customer_id) is None:
            raise ApiKeyRequestError(f"no customer with id {customer_id!r}")

    async def authenticate(self, secret: str) -> Principal:
        """Return the principal of a valid key.

        Raises:
            AuthenticationError: Unknown, malformed, expired or revoked key.
            DatabaseUnavailableError: The database cannot be reached.
        """
        if not secret.startswith(KEY_SCHEME) or len(secret) <= PREFIX_LENGTH:
            raise AuthenticationError("malformed key")
        digest = hashlib.sha256(secret.encode()).digest()
        verified = self._verified.get(digest)
        if verified is not None and verified.until > self._monotonic():
            expires_at = verified.expires_at
            if expires_at is None or expires_at > self._clock.now():
                return verified.principal
        self._verified.pop(digest, None)
        # One lookup per key at a time: when the entry of a busy key expires, every
        # request in flight would otherwise open a session of its own at once.
        pending = self._lookups.get(digest)
        if pending is None:
            pending = asyncio.ensure_future(self._lookup(secret, digest))
            self._lookups[digest] = pending
            pending.add_done_callback(partial(self._looked_up, digest))
        return await asyncio.shield(pending)

    def _looked_up(self, digest: bytes, lookup: asyncio.Future[Principal]) -> None:
        self._lookups.pop(digest, None)
        if not lookup.cancelled():
            lookup.exception()  # retrieved: every waiter may have gone (cancelled)

    async def _lookup(self, secret: str, digest: bytes) -> Principal:
        forgotten = self._forgotten
        async with session_scope(self._sessionmaker, reads=True) as session:
            key = await repository.get_key_by_prefix(session, prefix=secret[:PREFIX_LENGTH])
        if key is None:
            raise AuthenticationError("unknown key")
        if not hmac.compare_digest(hash_secret(secret, salt=key.salt), key.secret_hash):
            raise AuthenticationError("unknown key")
        status = key_status(key, now=self._clock.now())
        if status != "active":
            raise AuthenticationError(f"{status} key")
        principal = Principal(
            key_id=key.id,
            name=key.name,
            role=Role(key.role),
            customer_id=key.customer_id,
            key_prefix=key.prefix,
        )
        if self._cache_ttl > 0 and forgotten == self._forgotten:
            if len(self._verified) >= _CACHE_SIZE:
                del self._verified[next(iter(self._verified))]
            self._verified[digest] = _Verified(
                principal=principal,
                expires_at=key.expires_at,
                until=self._monotonic() + self._cache_ttl,
            )
        return principal

    def forget(self, key_id: int) -> None:
        """Stop trusting a cached verification of key ``key_id`` (it was revoked)."""
        self._forgotten += 1
        for digest in [d for d, v in self._verified.items() if v.principal.key_id == key_id]:
            del self._verified[digest]

    async def list_keys(self) -> list[ApiKey]:
        """Return every key, oldest first (no secrets: only hashes are stored)."""
        async with session_scope(self._sessionmaker) as session:
            return await repository.list_keys(session)

    async def revoke_key(self, key_id: int) -> ApiKey:
        """Revoke a key from now on; revoking a revoked key changes nothing.

        Raises:
            ApiKeyNotFoundError: No key has this id.
        """
        async with session_scope(self._sessionmaker, write=True) as session:
            key = await repository.get_key(session, key_id=key_id)
            if key is None:
                raise ApiKeyNotFoundError(key_id)
            now = self._clock.now()
            unchanged = key.revoked_at is not None
            if not unchanged:
                key.revoked_at = now
            await audit.record(
                session,
                AuditAction.APIKEY_REVOKE,
                at=now,
                target_id=key.id,
                customer_id=key.customer_id,
                details={"prefix": key.prefix, "role": key.role},
                outcome=AuditOutcome.UNCHANGED if unchanged else AuditOutcome.SUCCESS,
            )
            await session.commit()
        self.forget(key_id)
        return key
