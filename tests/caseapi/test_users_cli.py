"""``nms user create|list|passwd|disable|enable`` through ``user_main`` on a SQLite file."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from caseapi.core.database import make_engine, make_sessionmaker, migrate
from caseapi.customers.models import Customer
from caseapi.users.cli import user_main
from caseapi.users.errors import LoginFailedError
from caseapi.users.passwords import cheap_hasher
from caseapi.users.service import UserService
from nms.clock import FakeClock
from tests.caseapi.conftest import START

PASSWORD = "cli-given-secret"


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'users.db'}"

    async def setup() -> None:
        engine = make_engine(url)
        await migrate(engine)
        async with make_sessionmaker(engine)() as session:
            session.add(Customer(id="acme", name="Acme", contract_status="active", attributes={}))
            await session.commit()
        await engine.dispose()

    asyncio.run(setup())
    return url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=START)


def run(
    url: str, clock: FakeClock, *argv: str, stdin: str = "", answers: tuple[str, ...] = ()
) -> int:
    given = iter(answers)

    def prompt(text: str) -> str:
        try:
            return next(given)
        except StopIteration:
            raise EOFError from None

    return user_main(
        [*argv, "--database", url],
        clock=clock,
        hasher=cheap_hasher(),
        stdin=io.StringIO(stdin),
        prompt=prompt,
    )


def _sign_in(url: str, clock: FakeClock, email: str, password: str) -> str:
    async def go() -> str:
        engine = make_engine(url)
        try:
            service = UserService(
                sessionmaker=make_sessionmaker(engine), clock=clock, hasher=cheap_hasher()
            )
            return (await service.authenticate(email, password)).role
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_create_list_passwd_disable_enable(
    url: str, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    create = ["create", "--email", "Ann@Acme.example", "--name", "Ann", "--role", "customer"]
    assert run(url, clock, *create, "--customer", "acme", answers=(PASSWORD, PASSWORD)) == 0
    assert "created user 1 ann@acme.example: customer of customer acme" in capsys.readouterr().out
    assert _sign_in(url, clock, "ann@acme.example", PASSWORD) == "customer"

    staff = ["create", "--email", "bo@ops.example", "--name", "Bo", "--role", "admin"]
    assert (
        run(
            url,
            clock,
            *staff,
            "--timezone",
            "Europe/Rome",
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
        == 0
    )
    assert run(url, clock, "list") == 0
    listing = capsys.readouterr().out
    assert "ann@acme.example" in listing and "bo@ops.example" in listing and "active" in listing
    assert PASSWORD not in listing and "$argon2" not in listing

    assert (
        run(url, clock, "passwd", "ann@acme.example", "--password-stdin", stdin="new-cli-secret\n")
        == 0
    )
    with pytest.raises(LoginFailedError):
        _sign_in(url, clock, "ann@acme.example", PASSWORD)
    assert _sign_in(url, clock, "ann@acme.example", "new-cli-secret") == "customer"

    assert run(url, clock, "disable", "ANN@acme.example") == 0
    with pytest.raises(LoginFailedError):
        _sign_in(url, clock, "ann@acme.example", "new-cli-secret")
    run(url, clock, "list")
    assert "disabled" in capsys.readouterr().out
    assert run(url, clock, "enable", "ann@acme.example") == 0
    assert _sign_in(url, clock, "ann@acme.example", "new-cli-secret") == "customer"


@pytest.mark.parametrize(
    ("argv", "answers", "message"),
    [
        (["--email", "x", "--role", "noc"], (PASSWORD, PASSWORD), "email:"),
        (["--email", "c@x.example", "--role", "customer"], (PASSWORD, PASSWORD), "customer:"),
        (
            ["--email", "c@x.example", "--role", "customer", "--customer", "zz"],
            (PASSWORD, PASSWORD),
            "zz",
        ),
        (
            ["--email", "c@x.example", "--role", "noc", "--timezone", "Nowhere/X"],
            (PASSWORD, PASSWORD),
            "timezone:",
        ),
        (
            ["--email", "c@x.example", "--role", "noc"],
            ("short", "short"),
            "password: must be at least 12",
        ),
        (["--email", "c@x.example", "--role", "noc"], (PASSWORD, PASSWORD + "x"), "differ"),
        (["--email", "c@x.example", "--role", "noc"], (), "--password-stdin"),
    ],
)
def test_bad_input_names_the_field_and_exits_2(
    url: str,
    clock: FakeClock,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    answers: tuple[str, ...],
    message: str,
) -> None:
    assert run(url, clock, "create", "--name", "N", *argv, answers=answers) == 2
    assert message in capsys.readouterr().err
    run(url, clock, "list")
    assert "c@x.example" not in capsys.readouterr().out


def test_unknown_account_and_bad_role_exit_2(
    url: str, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(url, clock, "disable", "nobody@example.net") == 2
    assert "no user 'nobody@example.net'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as raised:
        run(url, clock, "create", "--email", "a@b.example", "--name", "A", "--role", "service")
    assert raised.value.code == 2
    assert "--role" in capsys.readouterr().err


@pytest.mark.slow
def test_nms_user_is_mounted_and_uses_production_hashes(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'nms.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NMS_")}
    argv = ["user", "create", "--email", "p@x.example", "--name", "P", "--role", "noc"]
    made = subprocess.run(
        [sys.executable, "-m", "nms.app.cli", *argv, "--password-stdin", "--database", url],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    assert "created user 1 p@x.example: noc" in made.stdout

    async def stored() -> str:
        engine = make_engine(url)
        try:
            service = UserService(
                sessionmaker=make_sessionmaker(engine), clock=FakeClock(start=START)
            )
            return (await service.find_user("p@x.example")).password_hash
        finally:
            await engine.dispose()

    hashed = asyncio.run(stored())
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert PasswordHasher().verify(hashed, PASSWORD)
