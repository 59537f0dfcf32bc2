"""``nms user create|list|passwd|disable|enable``: console accounts from the command line.

Hook into ``nms.app.cli`` with ``add_user_commands(subparsers)`` and dispatch
``args.command == "user"`` to ``run_user_command(args)``; ``user_main(argv)`` runs
the same commands on their own (tests, ``python -m caseapi.users.cli``).

A password never comes from the command line (it would show in ``ps`` and the shell
history): it is asked for twice at a prompt, or read as one line from stdin with
``--password-stdin``. Exit codes: 0 success, 1 the database is unreachable, 2 bad
input (the message names the field: ``email``, ``role``, ``customer``,
``timezone``, ``language``, ``password``) or an unknown account.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Final, TextIO

from argon2 import PasswordHasher

from caseapi.audit.context import audit_origin, cli_origin
from caseapi.clock import Clock, SystemClock
from caseapi.core.config import DatabaseSettings
from caseapi.core.database import make_engine, make_sessionmaker, migrate
from caseapi.core.errors import DatabaseError
from caseapi.users.errors import EmailTakenError, UserNotFoundError, UserRequestError
from caseapi.users.service import LANGUAGES, USER_ROLES, UserService

EXIT_RUNTIME: Final = 1
EXIT_USAGE: Final = 2
DEFAULT_DATABASE_URL: Final = DatabaseSettings().url


class _PasswordInputError(Exception):
    pass


def add_user_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    *,
    default_database: str = DEFAULT_DATABASE_URL,
) -> None:
    """Add ``user`` with ``create``, ``list``, ``passwd``, ``disable`` and ``enable``."""
    user = subparsers.add_parser("user", help="manage web console accounts")
    actions = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create",
        help="create a console account",
        description="Create a web console account. The password is asked for at a prompt "
        "(or read from stdin with --password-stdin), never taken from the command line.",
    )
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True, help="the name shown on pages")
    create.add_argument("--role", required=True, choices=[role.value for role in USER_ROLES])
    create.add_argument("--customer", metavar="ID", help="customer id (customer role only)")
    create.add_argument("--timezone", default="UTC", help="IANA zone (default UTC)")
    create.add_argument("--language", default="en", choices=list(LANGUAGES))
    actions.add_parser("list", help="list console accounts")
    passwd = actions.add_parser("passwd", help="set an account's password (ends its sessions)")
    passwd.add_argument("email")
    disable = actions.add_parser("disable", help="disable an account (ends its sessions)")
    disable.add_argument("email")
    enable = actions.add_parser("enable", help="enable a disabled account")
    enable.add_argument("email")
    for name in ("create", "passwd"):
        actions.choices[name].add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password as one line from stdin instead of a prompt",
        )
    for action in actions.choices.values():
        action.add_argument(
            "--database",
            default=default_database,
            metavar="URL",
            help=f"SQLAlchemy URL (default {default_database})",
        )


def run_user_command(
    args: argparse.Namespace,
    *,
    clock: Clock | None = None,
    hasher: PasswordHasher | None = None,
    stdin: TextIO | None = None,
    prompt: Callable[[str], str] = getpass.getpass,
) -> int:
    """Run a parsed ``user`` command; return the exit code."""
    try:
        password = _read_password(args, stdin or sys.stdin, prompt)
        return asyncio.run(_run(args, clock or SystemClock(), hasher, password))
    except (UserRequestError, EmailTakenError, UserNotFoundError, _PasswordInputError) as exc:
        print(f"nms: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DatabaseError as exc:
        print(f"nms: database problem: {exc}", file=sys.stderr)
        return EXIT_RUNTIME


def _read_password(
    args: argparse.Namespace, stdin: TextIO, prompt: Callable[[str], str]
) -> str | None:
    if args.user_command not in ("create", "passwd"):
        return None
    if args.password_stdin:
        line = stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        if password.endswith("\r"):
            password = password[:-1]
        if not password:
            raise _PasswordInputError("password: nothing was read from stdin")
        return password
    try:
        first = prompt("Password: ")
        second = prompt("Password again: ")
    except EOFError:
        raise _PasswordInputError("password: no terminal to ask on; use --password-stdin") from None
    if first != second:
        raise _PasswordInputError("password: the two entries differ")
    return first


async def _run(
    args: argparse.Namespace, clock: Clock, hasher: PasswordHasher | None, password: str | None
) -> int:
    engine = make_engine(args.database)
    try:
        await migrate(engine)
        service = UserService(sessionmaker=make_sessionmaker(engine), clock=clock, hasher=hasher)
        with audit_origin(cli_origin()):
            command = args.user_command
            if command == "list":
                return await _list(service)
            if command == "create":
                assert password is not None
                user = await service.create_user(
                    email=args.email,
                    display_name=args.name,
                    password=password,
                    role=args.role,
                    customer_id=args.customer,
                    timezone=args.timezone,
                    language=args.language,
                )
                scope = f" of customer {user.customer_id}" if user.customer_id else ""
                print(f"created user {user.id} {user.email}: {user.role}{scope}")
                return 0
            user = await service.find_user(args.email)
            if command == "passwd":
                assert password is not None
                await service.reset_password(user.id, new=password)
                print(f"password of {user.email} set; its sessions have ended")
            else:
                disabled = command == "disable"
                await service.set_disabled(user.id, disabled=disabled, by_user_id=None)
                print(
                    f"{user.email} {'disabled; its sessions have ended' if disabled else 'enabled'}"
                )
            return 0
    finally:
        await engine.dispose()


async def _list(service: UserService) -> int:
    rows = [("ID", "E-MAIL", "ROLE", "CUSTOMER", "STATUS", "LAST LOGIN", "NAME")]
    for user in await service.list_users():
        rows.append(
            (
                str(user.id),
                user.email,
                user.role,
                user.customer_id or "-",
                "disabled" if user.disabled else "active",
                _iso(user.last_login_at),
                user.display_name,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        print(cells + "  " + row[-1])
    return 0


def _iso(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else "-"


def user_main(
    argv: Sequence[str] | None = None,
    *,
    clock: Clock | None = None,
    hasher: PasswordHasher | None = None,
    stdin: TextIO | None = None,
    prompt: Callable[[str], str] = getpass.getpass,
) -> int:
    """Run ``user`` commands on their own: ``user_main(["list", "--database", URL])``."""
    parser = argparse.ArgumentParser(prog="nms")
    add_user_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["user", *(argv if argv is not None else sys.argv[1:])])
    return run_user_command(args, clock=clock, hasher=hasher, stdin=stdin, prompt=prompt)


if __name__ == "__main__":
    sys.exit(user_main())
