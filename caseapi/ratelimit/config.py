"""The ``api.rate_limits.*`` settings: how many of what, per whom, and where counted.

A limit is written as the ``limits`` library parses it: ``10/minute``, ``60/hour``,
``5 per 2 seconds``, several joined by ``;`` (``10/minute;100/day``: each applies),
or ``off``. The storage is ``memory://`` (this process only: the embedded default)
or ``redis://host:port/db`` (``rediss://`` with TLS), which several ``nms api``
replicas share so a limit holds across them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final
from urllib.parse import urlsplit

import limits
from pydantic import field_validator

from caseapi.core.config import Section
from caseapi.core.durations import Duration, positive

OFF: Final = "off"
STORAGE_SCHEMES: Final = ("memory", "redis", "rediss")


def parse_limit(value: str) -> list[limits.RateLimitItem]:
    """The rate limit items of ``value`` (none for ``off``).

    Raises:
        ValueError: Not a limit such as ``10/minute``, or an amount below 1.
    """
    text = value.strip()
    if text.lower() == OFF:
        return []
    try:
        items = limits.parse_many(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a rate limit: write e.g. '10/minute', '60/hour', "
            "'10/minute;100/day' or 'off'"
        ) from None
    for item in items:
        if item.amount < 1:
            raise ValueError(f"{value!r}: the amount must be at least 1 (or write 'off')")
    return items


class RateLimitSettings(Section):
    """Rate limits of the API (``api.rate_limits``); counted per limit in metrics."""

    auth_failures_per_address: str = "10/minute"
    """Failed authentications (unknown, malformed, expired or revoked keys) per client
    address; past it every request from that address is 429 until the window frees."""
    auth_failures_per_key: str = "10/minute"
    """Failed authentications per presented key prefix (its first 12 characters)."""
    login_failures_per_address: str = "10/minute;50/hour"
    """Failed console sign-ins (``/login``) per client address; past it the sign-in
    form answers 429 without checking the password until the window frees."""
    login_failures_per_account: str = "5/minute;20/hour"
    """Failed console sign-ins per e-mail address typed (existing or not), from any
    address."""
    case_creation_per_customer: str = "60/hour"
    """``POST /v1/cases`` by a customer key, per customer (staff and service keys: none)."""
    comments_per_customer: str = "120/hour"
    """Comments by a customer key, per customer (staff and service keys: none)."""
    storage_url: str = "memory://"
    """``memory://`` (this process) or ``redis://host:6379/0`` (shared by replicas)."""
    key_prefix: str = "nms"
    """Prefix of the counters' keys in a shared storage (one Redis, several systems)."""
    storage_timeout: Duration = timedelta(milliseconds=500)
    """How long one call to the storage may take; past it (or when the storage is
    down) the request is let through and the error counted: limits fail open."""

    @field_validator(
        "auth_failures_per_address",
        "auth_failures_per_key",
        "login_failures_per_address",
        "login_failures_per_account",
        "case_creation_per_customer",
        "comments_per_customer",
    )
    @classmethod
    def _check_limit(cls, value: str) -> str:
        parse_limit(value)
        return value.strip()

    @field_validator("storage_url")
    @classmethod
    def _check_storage(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in STORAGE_SCHEMES:
            raise ValueError(
                f"{_masked(url)!r}: use 'memory://' or 'redis://host:6379/0' ('rediss://' for TLS)"
            )
        if parts.scheme != "memory":
            if not parts.hostname:
                raise ValueError(f"{_masked(url)!r}: a Redis URL needs a host")
            try:
                parts.port  # noqa: B018 - raises for a bad port
            except ValueError as exc:
                raise ValueError(f"{_masked(url)!r}: {exc}") from None
        return url

    @field_validator("key_prefix")
    @classmethod
    def _check_prefix(cls, prefix: str) -> str:
        if not prefix or not all(c.isalnum() or c in "-_:." for c in prefix):
            raise ValueError("must be letters, digits, '-', '_', ':' or '.' (e.g. 'nms')")
        return prefix

    @field_validator("storage_timeout")
    @classmethod
    def _check_timeout(cls, value: timedelta) -> timedelta:
        return positive(value)


def _masked(url: str) -> str:
    """``url`` without its password (Redis URLs may carry one)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
