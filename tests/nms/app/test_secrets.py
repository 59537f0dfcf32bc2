"""Secret keys of the nms processes: ``nms secrets``, ``enc:`` settings and inventory
values, the default key file, and secrets kept out of ``config show``, repr and errors.

In-process through ``nms.app.cli.main`` where that is the same code path; one real
``nms run`` proves the exit code of a wrong key at start-up.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from caseapi.database import make_engine, make_sessionmaker, migrate
from caseapi.notifications.models import WebhookSubscription
from caseapi.secrets import SecretBox, generate_key, write_key_file
from nms.app.cli import main
from nms.app.settings import Settings, load_settings
from nms.app.wiring import secret_box
from nms.errors import ConfigError, InventoryError
from nms.inventory.loader import load_inventory
from tests.caseapi.notification_fixtures import free_port

K1, K2 = generate_key(), generate_key()
SMTP_PASSWORD = "smtp-Pw-9f3k"
BUS_PASSWORD = "bus-Pw-2m7q"
DB_PASSWORD = "db-Pw-5x1c"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("NMS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # the default ./nms.db.key is looked for here


def test_generate_key_and_encrypt(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["secrets", "generate-key"]) == 0
    key = capsys.readouterr().out.strip()
    SecretBox([key])  # a usable key
    monkeypatch.setenv("NMS_SECRETS__KEY", key)
    monkeypatch.setattr(sys, "stdin", io.StringIO(SMTP_PASSWORD + "\n"))
    assert main(["secrets", "encrypt"]) == 0
    sealed = capsys.readouterr().out.strip()
    assert sealed.startswith("enc:") and SMTP_PASSWORD not in sealed
    assert SecretBox([key]).decrypt(sealed) == SMTP_PASSWORD
    monkeypatch.delenv("NMS_SECRETS__KEY")
    monkeypatch.setattr(sys, "stdin", io.StringIO("x\n"))
    assert main(["secrets", "encrypt"]) == 2
    assert "no secret key configured" in capsys.readouterr().err


def test_encrypted_settings_open_and_no_secret_is_shown(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    box = SecretBox([K1])
    key_file = tmp_path / "nms.key"
    write_key_file(key_file, [K1])
    config = tmp_path / "nms.yaml"
    config.write_text(
        "notifications:\n"
        f"  smtp_password: {box.encrypt(SMTP_PASSWORD)}\n"
        f"  mqtt_url: mqtt://n:{BUS_PASSWORD}@127.0.0.1:1883\n"
        f"secrets: {{key_file: {key_file}}}\n"
    )
    monkeypatch.setenv("NMS_BUS__URL", box.encrypt(f"mqtt://nms:{BUS_PASSWORD}@127.0.0.1:1883"))
    monkeypatch.setenv(
        "NMS_DATABASE__URL", f"postgresql+asyncpg://nms:{DB_PASSWORD}@127.0.0.1:5432/nms"
    )
    settings = load_settings(config)
    assert settings.notifications.smtp_password is not None
    assert settings.notifications.smtp_password.get_secret_value() == SMTP_PASSWORD
    # The bus URL's credentials move to bus.username / bus.password (never shown).
    assert settings.bus.url == "mqtt://127.0.0.1:1883"
    assert settings.bus.username == "nms" and settings.bus.password is not None
    assert settings.bus.password.get_secret_value() == BUS_PASSWORD
    assert main(["config", "show", "--config", str(config)]) == 0
    shown = capsys.readouterr().out
    assert "mqtt://n:***@127.0.0.1:1883" in shown and "smtp_password: **********" in shown
    dispatcher = settings.notifications.dispatcher()
    for text in (shown, repr(settings), str(settings), repr(dispatcher)):
        for secret in (SMTP_PASSWORD, BUS_PASSWORD, DB_PASSWORD, K1):
            assert secret not in text


def test_wrong_or_missing_key_and_unsafe_key_file_stop_with_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NMS_NOTIFICATIONS__SMTP_PASSWORD", SecretBox([K1]).encrypt("pw"))
    with pytest.raises(ConfigError) as missing:
        load_settings()
    assert missing.value.problems == [
        "environment NMS_NOTIFICATIONS__SMTP_PASSWORD: encrypted (enc:...) but no secret "
        "key is configured (secrets.key_file or NMS_SECRETS__KEY)"
    ]
    monkeypatch.setenv("NMS_SECRETS__KEY", K2)
    assert main(["config", "show"]) == 2
    err = capsys.readouterr().err
    assert "NMS_NOTIFICATIONS__SMTP_PASSWORD: cannot decrypt" in err and K2 not in err
    # A rotation in progress: the old key as a previous key opens it.
    monkeypatch.setenv("NMS_SECRETS__PREVIOUS_KEYS", f'["{K1}"]')
    assert load_settings().secrets.previous_keys[0].get_secret_value() == K1
    monkeypatch.delenv("NMS_SECRETS__KEY")
    monkeypatch.delenv("NMS_SECRETS__PREVIOUS_KEYS")
    key_file = tmp_path / "open.key"
    key_file.write_text(K1 + "\n")
    key_file.chmod(0o644)
    monkeypatch.setenv("NMS_SECRETS__KEY_FILE", str(key_file))
    assert main(["config", "show"]) == 2
    assert f"chmod 600 {key_file}" in capsys.readouterr().err


def test_encrypted_snmp_credentials_in_the_inventory(tmp_path: Path) -> None:
    box = SecretBox([K1])
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(
        "customers: [{id: acme, name: ACME}]\n"
        "ntus:\n"
        "  - id: n1\n"
        "    customer: acme\n"
        "    address: 127.0.0.1\n"
        "    snmp:\n"
        "      version: 3\n"
        "      user: nms\n"
        "      auth_protocol: SHA\n"
        f"      auth_key: {box.encrypt('auth-phrase-1')}\n"
        "      priv_protocol: AES\n"
        f"      priv_key: {box.encrypt('priv-phrase-1')}\n"
        "  - id: n2\n"
        "    customer: acme\n"
        "    address: 127.0.0.2\n"
        f"    snmp: {{community: '{box.encrypt('c0mmunity')}'}}\n"
    )
    loaded = load_inventory(inventory, secrets=box)
    n1, n2 = loaded.ntus
    assert n1.snmp is not None and n2.snmp is not None
    assert n1.snmp.auth_key is not None and n1.snmp.priv_key is not None
    assert n1.snmp.auth_key.get_secret_value() == "auth-phrase-1"
    assert n1.snmp.priv_key.get_secret_value() == "priv-phrase-1"
    assert n2.snmp.community is not None
    assert n2.snmp.community.get_secret_value() == "c0mmunity"
    assert "phrase" not in repr(loaded) and "c0mmunity" not in repr(loaded)
    for secrets, problem in ((None, "no secret key is configured"), (SecretBox([K2]), "decrypt")):
        with pytest.raises(InventoryError) as caught:
            load_inventory(inventory, secrets=secrets)
        assert f"{inventory}:10: ntus[0].snmp.auth_key (id n1): " in caught.value.problems[0]
        assert all(problem in line for line in caught.value.problems)
        assert len(caught.value.problems) == 3  # auth_key, priv_key, community


def test_the_embedded_default_key_file(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'nms.db'}"
    settings = Settings(database={"url": url})
    first = secret_box(settings)
    key_file = tmp_path / "nms.db.key"
    assert first is not None and key_file.stat().st_mode & 0o777 == 0o600
    again = secret_box(Settings(database={"url": url}))
    assert again is not None and again.decrypt(first.encrypt("x")) == "x"
    assert secret_box(Settings(database={"url": "postgresql+asyncpg://127.0.0.1/x"})) is None


async def add_subscription(url: str, secret: str) -> None:
    engine = make_engine(url)
    try:
        await migrate(engine)
        now = datetime(2026, 12, 1, tzinfo=UTC)
        async with make_sessionmaker(engine)() as session:
            session.add(
                WebhookSubscription(
                    customer_id="acme",
                    url="https://hooks.example.net/h",
                    event_types=[],
                    description="",
                    active=True,
                    secret=secret,
                    created_by="test",
                    created_at=now,
                    updated_at=now,
                )
            )
            await session.commit()
    finally:
        await engine.dispose()


async def stored_secret(url: str) -> str:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            return (await session.execute(select(WebhookSubscription.secret))).scalar_one()
    finally:
        await engine.dispose()


def test_rotate_re_encrypts_and_a_wrong_key_stops_nms_run_with_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cases.db'}"
    asyncio.run(add_subscription(url, SecretBox([K1]).encrypt("whsec_x")))
    key_file = tmp_path / "nms.key"
    write_key_file(key_file, [K2, K1])  # the new key first, the old one after it
    monkeypatch.setenv("NMS_SECRETS__KEY_FILE", str(key_file))
    assert main(["secrets", "rotate", "--database", url]) == 0
    assert "re-encrypted 1 of 1 secrets (1 webhook subscriptions)" in capsys.readouterr().out
    assert SecretBox([K2]).decrypt(asyncio.run(stored_secret(url))) == "whsec_x"

    # Started with only the old key: a clear error before anything runs.
    env = {k: v for k, v in os.environ.items() if not k.startswith("NMS_")}
    env["NMS_SECRETS__KEY"] = K1
    listen = f"127.0.0.1:{free_port()}"
    result = subprocess.run(
        [sys.executable, "-m", "nms", "run", "--database", url, "--listen", listen],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "secret key problem, not started" in result.stderr
    assert "webhook subscription 1 (secret)" in result.stderr
    assert "Traceback" not in result.stderr and K1 not in result.stderr
