"""``nms apikey create|list|revoke`` through ``apikey_main`` on a SQLite file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from caseapi.auth.cli import apikey_main
from caseapi.auth.errors import AuthenticationError
from caseapi.auth.service import ApiKeyService
from caseapi.core.database import make_engine, make_sessionmaker, migrate
from caseapi.customers.models import Customer
from nms.clock import FakeClock
from tests.caseapi.conftest import START


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"

    async def setup() -> None:
        engine = make_engine(url)
        await migrate(engine)
        async with make_sessionmaker(engine)() as session:
            session.add(Customer(id="acme", name="Acme", contract_status="active", attributes={}))
            await session.commit()
        await engine.dispose()

    asyncio.run(setup())
    return url


def _authenticate(url: str, key: str, clock: FakeClock) -> str:
    async def run() -> str:
        engine = make_engine(url)
        try:
            service = ApiKeyService(sessionmaker=make_sessionmaker(engine), clock=clock)
            return (await service.authenticate(key)).actor
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_create_list_revoke(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    clock = FakeClock(start=START)
    argv = ["create", "--role", "customer", "--customer", "acme", "--name", "portal"]
    assert apikey_main([*argv, "--expires", "90d", "--database", url], clock=clock) == 0
    out, err = capsys.readouterr()
    key = out.strip()
    assert key.startswith("nms_") and "\n" not in key
    assert "created key 1" in err and "2026-05-30T12:00:00Z" in err
    assert _authenticate(url, key, clock) == "customer:portal"

    assert apikey_main(["list", "--database", url], clock=clock) == 0
    listing = capsys.readouterr().out
    assert key[:12] in listing and key not in listing
    assert "active" in listing and "portal" in listing

    assert apikey_main(["revoke", "1", "--database", url], clock=clock) == 0
    assert "revoked key 1" in capsys.readouterr().out
    with pytest.raises(AuthenticationError):
        _authenticate(url, key, clock)
    apikey_main(["list", "--database", url], clock=clock)
    assert "revoked" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["create", "--role", "customer", "--customer", "nobody", "--name", "x"], "nobody"),
        (["create", "--role", "customer", "--name", "x"], "customer_id"),
        (["revoke", "42"], "no API key with id 42"),
    ],
)
def test_bad_requests_exit_2(
    url: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert apikey_main([*argv, "--database", url]) == 2
    assert message in capsys.readouterr().err


def test_bad_expiry_is_a_usage_error(url: str) -> None:
    argv = ["create", "--role", "noc", "--name", "x", "--expires", "soon", "--database", url]
    with pytest.raises(SystemExit) as info:
        apikey_main(argv)
    assert info.value.code == 2


def test_unreachable_database_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql+asyncpg://postgres:hunter2@127.0.0.1:1/nms"
    assert apikey_main(["list", "--database", url]) == 1
    err = capsys.readouterr().err
    assert "database problem" in err and "hunter2" not in err
