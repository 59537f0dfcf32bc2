"""Secrets at rest: values encrypted with Fernet keys (``cryptography``).

A stored or configured secret is either plain text (accepted, for files written
before encryption) or ``enc:<Fernet token>``: AES-128-CBC with HMAC-SHA256, made
with the first key of the ``SecretBox`` and opened with any of its keys
(``MultiFernet``). Key rotation: put a new key first and keep the old ones after it,
re-encrypt what is stored (``SecretBox.rotate`` on every value; ``nms secrets
rotate``), then drop the old keys.

Keys are 32 random bytes, URL-safe base64 (``generate_key``), given as a value or in
a key file with one key per line (the first is the current one; ``#`` comments and
blank lines are ignored). A key file readable by anyone but its owner is refused:
whoever reads it reads every secret.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from caseapi.core.errors import CaseApiError

ENC_PREFIX: Final = "enc:"


class SecretKeyError(CaseApiError):
    """The secret keys cannot be used: missing, malformed, or the key file is unsafe."""

    code = "secret_key_error"


class SecretDecryptError(CaseApiError):
    """A value is ``enc:...`` but none of the configured keys opens it."""

    code = "secret_decrypt_error"


def generate_key() -> str:
    """A new key (32 random bytes, URL-safe base64), as ``SecretBox`` takes it."""
    return Fernet.generate_key().decode("ascii")


def is_encrypted(value: str) -> bool:
    return value.startswith(ENC_PREFIX)


class SecretBox:
    """Encrypts with the first key; decrypts with any of them."""

    __slots__ = ("_fernet", "_keys")

    def __init__(self, keys: Sequence[str]) -> None:
        """Build the box from ``keys``, the current one first.

        Raises:
            SecretKeyError: No key, or one that is not a Fernet key (names which).
        """
        if not keys:
            raise SecretKeyError("no secret key given")
        fernets = []
        for number, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.strip().encode("ascii")))
            except (ValueError, UnicodeError):
                which = "the current key" if number == 1 else f"previous key {number - 1}"
                raise SecretKeyError(
                    f"{which} is not a secret key (32 bytes, URL-safe base64; "
                    "make one with `nms secrets generate-key`)"
                ) from None
        self._keys = len(fernets)
        self._fernet = MultiFernet(fernets)

    def __repr__(self) -> str:
        return f"SecretBox(keys={self._keys})"

    def encrypt(self, plaintext: str) -> str:
        """``enc:<token>`` of ``plaintext`` under the current key."""
        return ENC_PREFIX + self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, stored: str) -> str:
        """The plain value of ``stored`` (plain text is returned as it is).

        Raises:
            SecretDecryptError: ``stored`` is ``enc:...`` and no key opens it.
        """
        if not is_encrypted(stored):
            return stored
        try:
            return self._fernet.decrypt(stored[len(ENC_PREFIX) :].encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise SecretDecryptError(
                "an encrypted secret does not open with any configured key "
                "(wrong key, or the key it was made with was removed)"
            ) from None

    def rotate(self, stored: str) -> str:
        """``stored`` encrypted under the current key (plain text gets encrypted).

        Raises:
            SecretDecryptError: As ``decrypt``.
        """
        if not is_encrypted(stored):
            return self.encrypt(stored)
        try:
            token = self._fernet.rotate(stored[len(ENC_PREFIX) :].encode("ascii"))
        except InvalidToken:
            raise SecretDecryptError(
                "an encrypted secret does not open with any configured key"
            ) from None
        return ENC_PREFIX + token.decode("ascii")


def open_secret(stored: str, box: SecretBox | None) -> str:
    """``stored`` in plain text, whether or not it was encrypted.

    Raises:
        SecretDecryptError: Encrypted, and no box or no key of it opens it.
    """
    if box is None:
        if is_encrypted(stored):
            raise SecretDecryptError(
                "an encrypted secret was found but no secret key is configured"
            )
        return stored
    return box.decrypt(stored)


def seal_secret(plaintext: str, box: SecretBox | None) -> str:
    """What to store for ``plaintext``: encrypted when there is a box."""
    return plaintext if box is None else box.encrypt(plaintext)


def read_key_file(path: Path) -> list[str]:
    """The keys in ``path``, current first.

    Raises:
        SecretKeyError: Missing, unreadable, empty, or readable by group or others.
    """
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise SecretKeyError(f"secret key file {path} does not exist") from None
    except (OSError, UnicodeError) as exc:
        raise SecretKeyError(f"secret key file {path}: cannot read: {exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretKeyError(
            f"secret key file {path} is accessible to others (mode {stat.S_IMODE(mode):04o}); "
            f"run: chmod 600 {path}"
        )
    keys = [line.strip() for line in text.splitlines()]
    keys = [key for key in keys if key and not key.startswith("#")]
    if not keys:
        raise SecretKeyError(f"secret key file {path} holds no key")
    return keys


def write_key_file(path: Path, keys: Sequence[str]) -> None:
    """Create ``path`` (mode 0600, whatever the umask) holding ``keys``; never overwrite.

    Raises:
        FileExistsError: ``path`` exists.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, "".join(f"{key}\n" for key in keys).encode("ascii"))
    finally:
        os.close(fd)
