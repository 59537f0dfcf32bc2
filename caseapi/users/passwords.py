"""Passwords: the policy (pure) and the Argon2id hasher.

Policy: 12 to 1024 characters (the upper bound keeps hashing cheap for a guesser's
megabyte-long "password"), not one of the most common passwords (compared ignoring
case and surrounding spaces), and not the account's own e-mail address.

Hashing: argon2-cffi's ``PasswordHasher``, Argon2id, with its RFC 9106 "low memory"
profile as the floor (time cost 3, 64 MiB, 4 lanes). The parameters are stored in the
hash, so raising them later rehashes each account at its next sign-in
(``needs_rehash``). Tests pass ``cheap_hasher()``: the same algorithm, a tiny cost.
"""

from __future__ import annotations

from typing import Final

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from caseapi.users.errors import WeakPasswordError

MIN_LENGTH: Final = 12
MAX_LENGTH: Final = 1024

#: The most common passwords of at least 12 characters in the public breach lists
#: (shorter ones are refused by the length rule already).
COMMON_PASSWORDS: Final = frozenset(
    {
        "123456789012",
        "1234567890123",
        "12345678901234",
        "123456789123",
        "111111111111",
        "000000000000",
        "123123123123",
        "qwertyuiopas",
        "qwertyuiop123",
        "qwerty123456",
        "1q2w3e4r5t6y",
        "1qaz2wsx3edc",
        "password1234",
        "password12345",
        "password123456",
        "passwordpassword",
        "passw0rd1234",
        "iloveyou1234",
        "administrator",
        "administrator1",
        "changeme1234",
        "letmein12345",
        "welcome12345",
        "welcome123456",
        "aaaaaaaaaaaa",
        "abcdefghijkl",
        "abc123abc123",
        "asdfghjkl123",
        "zaq12wsxcde3",
        "trustno1trustno1",
        "football1234",
        "baseball1234",
        "superman1234",
        "monkey123456",
        "sunshine1234",
        "princess1234",
        "dragon123456",
        "master123456",
        "correcthorsebatterystaple",
        "qwertyqwerty",
    }
)


def check_password(password: str, *, email: str | None = None) -> str:
    """``password`` if the policy accepts it.

    Raises:
        WeakPasswordError: Too short, too long, too common, or the e-mail address.
    """
    if len(password) < MIN_LENGTH:
        raise WeakPasswordError(f"must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        raise WeakPasswordError(f"must be at most {MAX_LENGTH} characters long")
    folded = password.strip().casefold()
    if folded in COMMON_PASSWORDS or len(set(folded)) <= 2:
        raise WeakPasswordError("is one of the most common passwords; choose another")
    if email is not None and folded == email.strip().casefold():
        raise WeakPasswordError("must not be the e-mail address")
    return password


def production_hasher() -> PasswordHasher:
    """Argon2id with argon2-cffi's defaults (RFC 9106 low-memory: t=3, 64 MiB, p=4)."""
    hasher = PasswordHasher()
    if hasher.type is not Type.ID:  # pragma: no cover - guards a library change
        raise RuntimeError("argon2-cffi's default is no longer Argon2id")
    return hasher


def cheap_hasher() -> PasswordHasher:
    """Argon2id at the lowest cost: for tests that make many accounts, never production."""
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, type=Type.ID)


def verify(hasher: PasswordHasher, stored: str, password: str) -> bool:
    """Whether ``password`` matches ``stored`` (a malformed stored hash matches nothing)."""
    try:
        return hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
