"""Secrets at rest: the key box, key files, and the webhook secrets in the database."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from caseapi.api.app import create_app
from caseapi.auth.principal import Role
from caseapi.cases.service import CaseService
from caseapi.core.secrets import (
    SecretBox,
    SecretDecryptError,
    SecretKeyError,
    generate_key,
    open_secret,
    read_key_file,
    write_key_file,
)
from caseapi.incidents import IncidentService
from caseapi.notifications.at_rest import rotate_webhook_secrets, seal_webhook_secrets
from caseapi.notifications.config import DEFAULT_DISPATCHER
from caseapi.notifications.dispatcher import NotificationDispatcher
from caseapi.notifications.models import WebhookSubscription
from caseapi.notifications.service import WebhookService
from caseapi.notifications.signing import verify
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import authed_client
from tests.caseapi.conftest import START, Database, incident
from tests.caseapi.notification_fixtures import (
    LAB_WEBHOOKS,
    WebhookSink,
    webhook_sink_fixture,  # noqa: F401
)

K1, K2 = generate_key(), generate_key()


def test_the_stored_value_is_not_the_secret_and_opens_only_with_its_key() -> None:
    box = SecretBox([K1])
    sealed = box.encrypt("whsec_abc")
    assert sealed.startswith("enc:") and "whsec_abc" not in sealed
    assert box.encrypt("whsec_abc") != sealed  # random IV: equal secrets do not show
    assert box.decrypt(sealed) == "whsec_abc"
    assert box.decrypt("plain") == "plain"  # written before encryption: accepted
    with pytest.raises(SecretDecryptError, match="does not open with any configured key"):
        SecretBox([K2]).decrypt(sealed)
    with pytest.raises(SecretDecryptError, match="no secret key is configured"):
        open_secret(sealed, None)
    assert K1 not in repr(box) and repr(box) == "SecretBox(keys=1)"


def test_rotation_re_encrypts_under_the_new_key() -> None:
    old = SecretBox([K1]).encrypt("s")
    during = SecretBox([K2, K1])  # new key first, the old one still opens
    assert during.decrypt(old) == "s"
    rotated = during.rotate(old)
    assert SecretBox([K2]).decrypt(rotated) == "s"
    with pytest.raises(SecretDecryptError):
        SecretBox([K1]).decrypt(rotated)
    assert SecretBox([K2]).decrypt(during.rotate("plain")) == "plain"


@pytest.mark.parametrize(
    ("keys", "message"),
    [([], "no secret key"), (["short"], "the current key is not"), ([K1, "x"], "previous key 1")],
)
def test_bad_keys_are_named(keys: list[str], message: str) -> None:
    with pytest.raises(SecretKeyError, match=message):
        SecretBox(keys)


def test_key_files(tmp_path: Path) -> None:
    path = tmp_path / "nms.key"
    write_key_file(path, [K2, K1])
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_key_file(path) == [K2, K1]
    with pytest.raises(FileExistsError):
        write_key_file(path, [K1])  # never overwritten
    path.chmod(0o644)
    with pytest.raises(SecretKeyError, match=r"accessible to others \(mode 0644\); run: chmod 600"):
        read_key_file(path)
    other = tmp_path / "commented.key"
    other.write_text(f"# current\n{K1}\n\n# before 2026-12\n{K2}\n")
    other.chmod(0o600)
    assert read_key_file(other) == [K1, K2]
    empty = tmp_path / "empty.key"
    empty.write_text("# nothing\n")
    empty.chmod(0o600)
    with pytest.raises(SecretKeyError, match="holds no key"):
        read_key_file(empty)
    with pytest.raises(SecretKeyError, match="does not exist"):
        read_key_file(tmp_path / "missing.key")


async def stored(database: Database) -> list[tuple[str, str | None]]:
    async with database.sessionmaker() as session:
        rows = await session.execute(
            select(WebhookSubscription.secret, WebhookSubscription.previous_secret).order_by(
                WebhookSubscription.id
            )
        )
        return [(a, b) for a, b in rows.all()]


async def test_webhook_secrets_are_stored_encrypted_and_still_sign(
    database: Database,
    service: CaseService,
    incidents: IncidentService,
    clock: FakeClock,
    webhook_sink: WebhookSink,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="caseapi")  # (aiosqlite's DEBUG echoes SQL)
    box = SecretBox([K1])
    settings = replace(DEFAULT_DISPATCHER, webhook_policy=LAB_WEBHOOKS, send_timeout=15.0)
    app = create_app(sessionmaker=database.sessionmaker, case_service=service, clock=clock)
    app.state.webhook_service = WebhookService(
        sessionmaker=database.sessionmaker, clock=clock, settings=settings, secrets=box
    )
    async with authed_client(app, role=Role.CUSTOMER, customer_id="cust-1") as customer:
        created = (await customer.post("/v1/webhooks", json={"url": webhook_sink.url})).json()
        first = created["secret"]
        rotated = await customer.post(f"/v1/webhooks/{created['id']}/rotate")
        second = rotated.json()["secret"]
    [(secret, previous)] = await stored(database)
    assert previous is not None
    assert (secret.startswith("enc:"), previous.startswith("enc:")) == (True, True)
    assert first not in secret + previous and second not in secret + previous
    assert (box.decrypt(secret), box.decrypt(previous)) == (second, first)

    await incidents.open_incident(incident("ntu-1"))
    sender = NotificationDispatcher(
        sessionmaker=database.sessionmaker, settings=settings, clock=clock, secrets=box
    )
    assert await sender.run_once(START) == 1
    [request] = webhook_sink.requests
    header = request.headers["x-nms-signature"]
    for plain in (first, second):  # both signatures during the overlap
        assert verify(header, request.body, plain, now=START.timestamp())

    # Started with the wrong key, a dispatcher fails the delivery (retried later)
    # and says why, without a secret in the log or the NOC's view.
    await incidents.open_incident(incident("ntu-2"))
    wrong = NotificationDispatcher(
        sessionmaker=database.sessionmaker, settings=settings, clock=clock, secrets=SecretBox([K2])
    )
    assert await wrong.run_once(START) == 1
    assert len(webhook_sink.requests) == 1
    assert "does not open with any configured key" in caplog.text
    async with authed_client(app, role=Role.NOC) as noc:
        page = (await noc.get("/v1/notifications")).text
    for text in (caplog.text, page):
        for value in (first, second, secret, previous, K1, K2):
            assert value not in text


async def test_start_up_seals_clear_rows_refuses_a_wrong_key_and_rotation_re_encrypts(
    database: Database, service: CaseService, clock: FakeClock
) -> None:
    # Subscribed before a key was configured: stored in clear.
    app = create_app(sessionmaker=database.sessionmaker, case_service=service, clock=clock)
    app.state.webhook_service = WebhookService(
        sessionmaker=database.sessionmaker,
        clock=clock,
        settings=replace(DEFAULT_DISPATCHER, webhook_policy=LAB_WEBHOOKS),
    )
    async with authed_client(app, role=Role.CUSTOMER, customer_id="cust-1") as customer:
        for port in (9, 10):
            body = {"url": f"http://127.0.0.1:{port}/hook"}
            assert (await customer.post("/v1/webhooks", json=body)).status_code == 201
    plain = [secret for secret, _ in await stored(database)]
    assert all(secret.startswith("whsec_") for secret in plain)
    unsealed = await seal_webhook_secrets(database.sessionmaker, None)
    assert (unsealed.values, unsealed.rewritten, unsealed.plain) == (2, 0, 2)

    sealed = await seal_webhook_secrets(database.sessionmaker, SecretBox([K1]))
    assert (sealed.subscriptions, sealed.rewritten, sealed.plain) == (2, 2, 0)
    under_k1 = [secret for secret, _ in await stored(database)]
    assert [SecretBox([K1]).decrypt(s) for s in under_k1] == plain
    again = await seal_webhook_secrets(database.sessionmaker, SecretBox([K1]))
    assert again.rewritten == 0  # nothing to do the second time

    with pytest.raises(SecretDecryptError, match=r"webhook subscription \d+ \(secret\)"):
        await seal_webhook_secrets(database.sessionmaker, SecretBox([K2]))
    with pytest.raises(SecretDecryptError):
        await seal_webhook_secrets(database.sessionmaker, None)
    with pytest.raises(SecretDecryptError):
        await rotate_webhook_secrets(database.sessionmaker, SecretBox([K2]))
    assert [secret for secret, _ in await stored(database)] == under_k1  # unchanged

    done = await rotate_webhook_secrets(database.sessionmaker, SecretBox([K2, K1]))
    assert (done.values, done.rewritten) == (2, 2)
    assert [SecretBox([K2]).decrypt(s) for s, _ in await stored(database)] == plain
