"""The rate limiter: a small service every entry point calls (the API, the web
console's sign-in), on the ``limits`` library's moving windows.

Authentication failures are limited per client address and per presented key
prefix. Both are checked *before* the key is: once an address has failed
``auth_failures_per_address`` times in the window, every request from it is 429
until the oldest failure leaves the window - a correct key too, as fail2ban bans
an address and GitHub's API refuses even valid credentials after repeated failures.
Otherwise a guesser would learn from a 200 amid 429s which guess was right, and
would keep the database busy. Other addresses are unaffected. Missing credentials
are not failures (nothing was guessed); expired and revoked keys are.

Case creation and comments are limited per customer, for customer keys only: staff
act for every customer and service keys are the operator's own machines.

The storage is the library's: in this process (``memory://``) or Redis, shared by
API replicas. A storage that fails or is slow lets requests through (fail open: an
outage of Redis must not take the API down) and is counted and logged; then it is
left alone for ``STORAGE_RETRY_AFTER``, so a storage that times out does not slow
every request down.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import Any, Final, TypeVar

import coredis
import limits
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from caseapi.ratelimit.config import RateLimitSettings, parse_limit
from caseapi.ratelimit.errors import RateLimitedError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Limit(StrEnum):
    """The limits, by their setting name (also the metric's ``limit`` label)."""

    AUTH_FAILURES_PER_ADDRESS = "auth_failures_per_address"
    AUTH_FAILURES_PER_KEY = "auth_failures_per_key"
    LOGIN_FAILURES_PER_ADDRESS = "login_failures_per_address"
    LOGIN_FAILURES_PER_ACCOUNT = "login_failures_per_account"
    CASE_CREATION_PER_CUSTOMER = "case_creation_per_customer"
    COMMENTS_PER_CUSTOMER = "comments_per_customer"


#: What the 429's ``detail`` says was too many.
_WHAT: Final = {
    Limit.AUTH_FAILURES_PER_ADDRESS: "failed authentications from this address",
    Limit.AUTH_FAILURES_PER_KEY: "failed authentications with this key",
    Limit.LOGIN_FAILURES_PER_ADDRESS: "failed sign-ins from this address",
    Limit.LOGIN_FAILURES_PER_ACCOUNT: "failed sign-ins for this account",
    Limit.CASE_CREATION_PER_CUSTOMER: "cases created for this customer",
    Limit.COMMENTS_PER_CUSTOMER: "comments by this customer",
}

#: An IPv6 subscriber usually holds a whole /64: counting per address would let one
#: guesser use 2**64 of them.
_IPV6_SUBJECT_PREFIX: Final = 64

#: Seconds a failed storage is left alone (requests pass unchecked, and are counted).
STORAGE_RETRY_AFTER: Final = 5.0

#: Errors of a storage that is down or misbehaving (wrapped by ``wrap_exceptions``).
_STORAGE_DOWN: Final = (StorageError, TimeoutError, OSError)


@dataclass(slots=True)
class RateLimitStats:
    """Counters for the metrics: refusals per limit, checks not made (storage down)."""

    rejected: dict[Limit, int] = field(default_factory=lambda: dict.fromkeys(Limit, 0))
    storage_errors: int = 0


def address_subject(address: str) -> str:
    """What an address's failures are counted under: itself, or its /64 for IPv6."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, _IPV6_SUBJECT_PREFIX), strict=False))
    return address


def make_storage(settings: RateLimitSettings) -> tuple[Storage, coredis.ConnectionPool | None]:
    """The ``limits`` storage of ``settings.storage_url``, and its Redis connection
    pool (ours, so that ``RateLimiter.close`` can close its connections)."""
    url = settings.storage_url
    if url.startswith("memory:"):
        return MemoryStorage(), None
    timeout = settings.storage_timeout.total_seconds()
    pool = coredis.ConnectionPool.from_url(url, connect_timeout=timeout, stream_timeout=timeout)
    # limits' asyncio storages are named async+redis://; coredis is its default client.
    options: dict[str, Any] = {"connection_pool": pool}
    storage = RedisStorage(
        "async+" + url, wrap_exceptions=True, key_prefix=settings.key_prefix, **options
    )
    return storage, pool


class RateLimiter:
    """Checks and counts the API's rate limits (see the module docstring)."""

    def __init__(
        self,
        *,
        settings: RateLimitSettings | None = None,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Create the limiter.

        Args:
            settings: The limits and their storage; the defaults when omitted.
            wall: Seconds since the epoch, the time base of the ``limits`` library
                (its storages read ``time.time``); used for ``Retry-After`` only.
            monotonic: When to try a failed storage again.
        """
        settings = settings or RateLimitSettings()
        self._items = {limit: parse_limit(getattr(settings, limit.value)) for limit in Limit}
        self._storage, self._pool = make_storage(settings)
        self._strategy = MovingWindowRateLimiter(self._storage)
        self._timeout = settings.storage_timeout.total_seconds()
        # The in-process storage answers at once: no timer per call (every
        # authenticated request checks two limits).
        self._local = isinstance(self._storage, MemoryStorage)
        self._wall = wall
        self._monotonic = monotonic
        self._storage_down = False
        self._retry_storage_at = 0.0
        self.stats = RateLimitStats()

    async def close(self) -> None:
        """Close the storage's connections (Redis); the limiter is not used after."""
        if self._pool is not None:
            self._pool.disconnect()
            # The transports close on the loop's next turn.
            await asyncio.sleep(0)

    # -- authentication -----------------------------------------------------------

    async def check_authentication(self, *, address: str, key_prefix: str | None) -> None:
        """Refuse an authentication attempt from a blocked address or for a blocked key.

        Raises:
            RateLimitedError: ``auth_failures_per_address`` or ``auth_failures_per_key``
                is used up (429 with ``Retry-After``).
        """
        await self._check(Limit.AUTH_FAILURES_PER_ADDRESS, address_subject(address))
        if key_prefix is not None:
            await self._check(Limit.AUTH_FAILURES_PER_KEY, key_prefix)

    async def authentication_allowed(self, *, address: str, key_prefix: str | None) -> bool:
        """Whether ``check_authentication`` would let the attempt through; nothing is
        counted (the case reads' fast lane asks, and leaves a refusal to the app).
        """
        address_limit = Limit.AUTH_FAILURES_PER_ADDRESS
        if await self._refused_by(address_limit, address_subject(address)) is not None:
            return False
        if key_prefix is None:
            return True
        return await self._refused_by(Limit.AUTH_FAILURES_PER_KEY, key_prefix) is None

    async def authentication_failed(self, *, address: str, key_prefix: str | None) -> None:
        """Count one failed authentication against the address and the key prefix."""
        await self._hit(Limit.AUTH_FAILURES_PER_ADDRESS, address_subject(address))
        if key_prefix is not None:
            await self._hit(Limit.AUTH_FAILURES_PER_KEY, key_prefix)

    # -- console sign-in ------------------------------------------------------------

    async def check_login(self, *, address: str, account: str) -> None:
        """Refuse a console sign-in from a blocked address or for a blocked account
        (``account``: the e-mail address typed, lower-cased), before the password is
        checked - so a right guess amid 429s is not told apart.

        Raises:
            RateLimitedError: ``login_failures_per_address`` or
                ``login_failures_per_account`` is used up.
        """
        await self._check(Limit.LOGIN_FAILURES_PER_ADDRESS, address_subject(address))
        await self._check(Limit.LOGIN_FAILURES_PER_ACCOUNT, account)

    async def login_failed(self, *, address: str, account: str) -> None:
        """Count one failed console sign-in against the address and the account."""
        await self._hit(Limit.LOGIN_FAILURES_PER_ADDRESS, address_subject(address))
        await self._hit(Limit.LOGIN_FAILURES_PER_ACCOUNT, account)

    # -- quotas -------------------------------------------------------------------

    async def acquire(self, limit: Limit, subject: str) -> None:
        """Count one use of ``limit`` by ``subject`` (a customer id), if there is room.

        Raises:
            RateLimitedError: ``limit`` is used up for ``subject`` (the full window did
                not count this use).
        """
        for item in self._items[limit]:
            allowed = await self._guarded(
                partial(self._strategy.hit, item, limit.value, subject), True
            )
            if not allowed:
                # A moving window's hit takes nothing when it refuses; the items
                # before this one did take theirs, which only errs on the strict side.
                raise await self._refusal(limit, item, subject)

    # -- the storage --------------------------------------------------------------

    async def _check(self, limit: Limit, subject: str) -> None:
        item = await self._refused_by(limit, subject)
        if item is not None:
            raise await self._refusal(limit, item, subject)

    async def _refused_by(self, limit: Limit, subject: str) -> limits.RateLimitItem | None:
        """The first of ``limit``'s windows that ``subject`` has used up, if any."""
        for item in self._items[limit]:
            if not await self._guarded(
                partial(self._strategy.test, item, limit.value, subject), True
            ):
                return item
        return None

    async def _hit(self, limit: Limit, subject: str) -> None:
        for item in self._items[limit]:
            # A refused hit means the window is already full: the next attempt is 429.
            await self._guarded(partial(self._strategy.hit, item, limit.value, subject), True)
            # One line when a failure fills the window, not one per refused request
            # (an attacker would write the log full).
            if not await self._guarded(
                partial(self._strategy.test, item, limit.value, subject), True
            ):
                logger.warning("%s blocked: %s reached (%s)", subject, limit, item)

    async def _refusal(
        self, limit: Limit, item: limits.RateLimitItem, subject: str
    ) -> RateLimitedError:
        self.stats.rejected[limit] += 1
        stats = await self._guarded(
            partial(self._strategy.get_window_stats, item, limit.value, subject), None
        )
        wait = item.get_expiry() if stats is None else stats.reset_time - self._wall()
        retry_after = max(1, math.ceil(wait))
        logger.debug("rate limit %s refuses %s: retry after %d s", limit, subject, retry_after)
        return RateLimitedError(limit=limit.value, retry_after=retry_after, what=_WHAT[limit])

    async def _guarded(self, call: Callable[[], Awaitable[T]], fallback: T) -> T:
        """Make a storage call within the timeout; ``fallback`` when the storage fails.

        After a failure the storage is left alone for ``STORAGE_RETRY_AFTER``: a
        storage that times out must not add its timeout to every request.
        """
        now = self._monotonic()
        if self._storage_down and now < self._retry_storage_at:
            self.stats.storage_errors += 1
            return fallback
        if self._local:
            return await call()
        try:
            async with asyncio.timeout(self._timeout):
                result = await call()
        except _STORAGE_DOWN as exc:
            self.stats.storage_errors += 1
            if not self._storage_down:
                logger.warning("rate limit storage unavailable, limits not enforced: %r", exc)
            self._storage_down = True
            self._retry_storage_at = self._monotonic() + STORAGE_RETRY_AFTER
            return fallback
        if self._storage_down:
            logger.info("rate limit storage available again")
            self._storage_down = False
        return result
