"""The secret keys of the nms processes, and the ``nms secrets`` commands.

Where the keys come from, first match wins:

1. ``secrets.key`` (best from the environment, ``NMS_SECRETS__KEY``), plus any
   ``secrets.previous_keys``;
2. ``secrets.key_file``: one key a line, the current first, mode 0600;
3. with a SQLite database file and neither set: ``<database file>.key`` beside it,
   which ``nms run`` / ``nms api`` / ``nms detector`` create (0600) on their first
   start, so the embedded default stays two commands and its webhook secrets are
   still encrypted. Back it up with the database: without it the stored webhook
   secrets cannot be used.

With PostgreSQL and no key, webhook secrets are stored in clear and start-up says so.

The same keys open ``enc:`` values in the settings (``nms secrets encrypt``) and in
the inventory (SNMP community and v3 keys).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from caseapi.secrets import (
    SecretBox,
    SecretKeyError,
    generate_key,
    read_key_file,
    write_key_file,
)

if TYPE_CHECKING:
    from nms.app.settings import Settings

log = logging.getLogger("nms.secrets")


def default_key_file(database_url: str) -> Path | None:
    """``<file>.key`` beside a SQLite database file; None for anything else."""
    try:
        url = make_url(database_url)
    except (ArgumentError, ValueError):
        return None
    if not url.drivername.startswith("sqlite") or not url.database:
        return None
    if url.database == ":memory:" or url.database.startswith("file:"):
        return None
    return Path(url.database + ".key")


def configured_keys(
    *,
    key: str | None,
    previous: Sequence[str],
    key_file: Path | None,
    database_url: str | None,
) -> list[str] | None:
    """The keys, current first, or None when none is configured (see the module doc).

    Raises:
        SecretKeyError: Both a key and a key file, an unusable key file, or previous
            keys without a current one.
    """
    if key and key_file is not None:
        raise SecretKeyError("give secrets.key or secrets.key_file, not both")
    if key:
        return [key, *previous]
    if key_file is not None:
        return [*read_key_file(key_file), *previous]
    default = default_key_file(database_url) if database_url else None
    if default is not None and default.exists():
        return [*read_key_file(default), *previous]
    if previous:
        raise SecretKeyError("secrets.previous_keys needs a current key (secrets.key)")
    return None


def keys_from_raw(data: Mapping[str, Any], default_url: str) -> list[str] | None:
    """``configured_keys`` from unvalidated settings input (before ``enc:`` values open).

    Raises:
        SecretKeyError: As ``configured_keys``.
    """
    section = data.get("secrets")
    raw: Mapping[str, Any] = section if isinstance(section, Mapping) else {}
    database = data.get("database")
    url = database.get("url") if isinstance(database, Mapping) else None
    url = url if isinstance(url, str) else default_url

    def text(value: Any) -> str | None:
        if value is None:
            return None
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        return str(value)

    previous_raw = raw.get("previous_keys") or []
    previous = [text(item) or "" for item in previous_raw] if isinstance(previous_raw, list) else []
    key_file = raw.get("key_file")
    return configured_keys(
        key=text(raw.get("key")),
        previous=previous,
        key_file=Path(key_file) if key_file else None,
        database_url=url,
    )


def box_for(keys: list[str] | None) -> SecretBox | None:
    return None if keys is None else SecretBox(keys)


def owned_box(*, keys: list[str] | None, database_url: str) -> SecretBox | None:
    """The box of a process that stores secrets: creates the default key file if due.

    Raises:
        SecretKeyError: The key file cannot be created.
    """
    if keys is not None:
        return SecretBox(keys)
    default = default_key_file(database_url)
    if default is None:
        log.warning(
            "no secret key configured (secrets.key_file or NMS_SECRETS__KEY): "
            "webhook secrets are stored in clear"
        )
        return None
    key = generate_key()
    try:
        write_key_file(default, [key])
    except FileExistsError:
        return SecretBox(read_key_file(default))
    except OSError as exc:
        raise SecretKeyError(f"cannot create the secret key file {default}: {exc}") from None
    log.warning(
        "created the secret key file %s (mode 0600): it encrypts the webhook secrets "
        "in the database; back it up with the database",
        default,
    )
    return SecretBox([key])


# -- nms secrets ---------------------------------------------------------------------


def add_secrets_commands(sub: Any, add_config: Any) -> None:
    """``nms secrets generate-key | encrypt | rotate``."""
    secrets = sub.add_parser("secrets", help="secret keys: make one, encrypt a value, rotate")
    actions = secrets.add_subparsers(dest="secrets_command", required=True, metavar="ACTION")
    actions.add_parser(
        "generate-key",
        help="print a new secret key",
        description="Print a new key (32 random bytes, URL-safe base64) for secrets.key "
        "or a key file (one key a line, the current first, mode 0600).",
    )
    encrypt = actions.add_parser(
        "encrypt",
        help="encrypt a value read from standard input for a settings or inventory file",
        description="Read one value from standard input (not the command line: it would "
        "show in ps and the shell history) and print it as enc:..., which settings "
        "(e.g. notifications.smtp_password) and inventories (SNMP community, auth_key, "
        "priv_key) accept in place of the value.",
    )
    add_config(encrypt)
    rotate = actions.add_parser(
        "rotate",
        help="re-encrypt every stored secret under the current key",
        description="Re-encrypt the webhook secrets in the database under the current "
        "key, in one transaction (the old keys must still be configured after it, "
        "as secrets.previous_keys or further lines of the key file). Prints counts.",
    )
    add_config(rotate)
    rotate.add_argument("--database", metavar="URL", help="SQLAlchemy URL (default: settings)")


def run_secrets_command(args: argparse.Namespace, settings_loader: Any) -> int:
    """Run ``nms secrets ...``; returns the exit code.

    Raises:
        SecretKeyError: No usable key (the caller prints it; exit 2).
        SecretDecryptError: A stored secret opens with no configured key.
    """
    if args.secrets_command == "generate-key":
        print(generate_key())
        return 0
    settings = settings_loader(args)
    keys = settings_keys(settings)
    if keys is None:
        raise SecretKeyError(
            "no secret key configured: set secrets.key_file or NMS_SECRETS__KEY "
            "(make a key with `nms secrets generate-key`)"
        )
    box = SecretBox(keys)
    if args.secrets_command == "encrypt":
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            raise SecretKeyError("nothing to encrypt: give the value on standard input")
        print(box.encrypt(value))
        return 0
    from caseapi.database import make_engine, make_sessionmaker, migrate
    from caseapi.secrets import rotate_webhook_secrets

    async def rotate() -> None:
        engine = make_engine(settings.database.url)
        try:
            await migrate(engine)
            done = await rotate_webhook_secrets(make_sessionmaker(engine), box)
        finally:
            await engine.dispose()
        print(
            f"re-encrypted {done.rewritten} of {done.values} secrets "
            f"({done.subscriptions} webhook subscriptions) under the current key"
        )

    asyncio.run(rotate())
    return 0


def settings_keys(settings: Settings) -> list[str] | None:
    """The configured keys of ``settings`` (None: none), creating nothing.

    Raises:
        SecretKeyError: As ``configured_keys``.
    """
    section = settings.secrets
    return configured_keys(
        key=section.key.get_secret_value() if section.key else None,
        previous=[key.get_secret_value() for key in section.previous_keys],
        key_file=section.key_file,
        database_url=settings.database.url,
    )


def settings_box(settings: Settings) -> SecretBox | None:
    """The box that opens ``enc:`` values of ``settings``' processes (None: no key)."""
    return box_for(settings_keys(settings))
