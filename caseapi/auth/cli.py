"""``nms apikey create|list|revoke``: manage API keys from the command line.

Hook into ``nms.app.cli`` with ``add_apikey_commands(subparsers)`` and dispatch
``args.command == "apikey"`` to ``run_apikey_command(args)``; ``apikey_main(argv)``
runs the same commands on their own (tests, ``python -m caseapi.auth.cli``).

``create`` prints the new key alone on stdout (``KEY=$(nms apikey create ...)``) and
its details on stderr. Exit codes: 0 success, 1 the database is unreachable, 2 a bad
request (unknown customer, bad expiry, unknown key id).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from caseapi.audit.context import audit_origin, cli_origin
from caseapi.auth.errors import ApiKeyNotFoundError, ApiKeyRequestError
from caseapi.auth.principal import Role
from caseapi.auth.service import ApiKeyService, key_status
from caseapi.clock import Clock, SystemClock
from caseapi.core.config import DatabaseSettings
from caseapi.core.database import make_engine, make_sessionmaker, migrate
from caseapi.core.durations import parse_duration, positive
from caseapi.core.errors import DatabaseError

EXIT_RUNTIME: Final = 1
EXIT_USAGE: Final = 2
CLI_ACTOR: Final = "cli"
DEFAULT_DATABASE_URL: Final = DatabaseSettings().url


def _duration(value: str) -> timedelta:
    try:
        return positive(parse_duration(value))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_apikey_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    *,
    default_database: str = DEFAULT_DATABASE_URL,
) -> None:
    """Add ``apikey`` with its ``create``, ``list`` and ``revoke`` actions.

    Args:
        subparsers: The object returned by ``parser.add_subparsers()``.
        default_database: ``--database`` default (the settings' ``database.url``).
    """
    apikey = subparsers.add_parser("apikey", help="manage API keys")
    actions = apikey.add_subparsers(dest="apikey_command", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create",
        help="create an API key and print it (shown once)",
        description="Create an API key. The key is printed once on stdout; only a hash "
        "is stored. A customer key needs --customer, an existing customer id.",
    )
    create.add_argument("--role", required=True, choices=[role.value for role in Role])
    create.add_argument("--customer", metavar="ID", help="customer id (customer role only)")
    create.add_argument("--name", required=True, help="who or what uses the key")
    create.add_argument(
        "--expires", type=_duration, metavar="DURATION", help="lifetime, e.g. 90d (default: none)"
    )
    actions.add_parser("list", help="list API keys (prefix, role, status; never secrets)")
    revoke = actions.add_parser("revoke", help="revoke an API key at once")
    revoke.add_argument("key_id", type=int, metavar="ID")
    for action in actions.choices.values():
        action.add_argument(
            "--database",
            default=default_database,
            metavar="URL",
            help=f"SQLAlchemy URL (default {default_database})",
        )


def run_apikey_command(args: argparse.Namespace, *, clock: Clock | None = None) -> int:
    """Run a parsed ``apikey`` command; return the exit code."""
    try:
        return asyncio.run(_run(args, clock or SystemClock()))
    except (ApiKeyRequestError, ApiKeyNotFoundError) as exc:
        print(f"nms: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DatabaseError as exc:
        print(f"nms: database problem: {exc}", file=sys.stderr)
        return EXIT_RUNTIME


async def _run(args: argparse.Namespace, clock: Clock) -> int:
    engine = make_engine(args.database)
    try:
        await migrate(engine)
        service = ApiKeyService(sessionmaker=make_sessionmaker(engine), clock=clock)
        # The audit log names the operating-system user, from the command line.
        with audit_origin(cli_origin()):
            if args.apikey_command == "create":
                return await _create(service, args, clock)
            if args.apikey_command == "list":
                return await _list(service, clock)
            key = await service.revoke_key(args.key_id)
        print(f"revoked key {key.id} ({key.prefix}, {key.name}) at {_iso(key.revoked_at)}")
        return 0
    finally:
        await engine.dispose()


async def _create(service: ApiKeyService, args: argparse.Namespace, clock: Clock) -> int:
    expires_at = clock.now() + args.expires if args.expires is not None else None
    created = await service.create_key(
        name=args.name,
        role=Role(args.role),
        customer_id=args.customer,
        expires_at=expires_at,
        created_by=CLI_ACTOR,
    )
    key = created.key
    scope = f" for customer {key.customer_id}" if key.customer_id else ""
    expiry = f", expires {_iso(key.expires_at)}" if key.expires_at else ""
    print(
        f"created key {key.id} ({key.prefix}): {key.role}{scope}{expiry}. "
        "It is shown once, below; store it now.",
        file=sys.stderr,
    )
    print(created.secret)
    return 0


async def _list(service: ApiKeyService, clock: Clock) -> int:
    now = clock.now()
    rows = [("ID", "PREFIX", "ROLE", "CUSTOMER", "STATUS", "EXPIRES", "NAME")]
    for key in await service.list_keys():
        expires = _iso(key.expires_at)
        status = key_status(key, now=now)
        rows.append(
            (str(key.id), key.prefix, key.role, key.customer_id or "-", status, expires, key.name)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
            + "  "
            + row[-1]
        )
    return 0


def _iso(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else "-"


def apikey_main(argv: Sequence[str] | None = None, *, clock: Clock | None = None) -> int:
    """Run ``apikey`` commands on their own: ``apikey_main(["list", "--database", URL])``."""
    parser = argparse.ArgumentParser(prog="nms")
    add_apikey_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["apikey", *(argv or sys.argv[1:])])
    return run_apikey_command(args, clock=clock)


if __name__ == "__main__":
    sys.exit(apikey_main())
