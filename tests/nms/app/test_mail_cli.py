"""``nms mail deliver`` before any mail is read, the poller's wiring and its metrics.

The command over a real database and the poller against Dovecot run in
``test_mail_e2e.py``; these are the in-process checks around them.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from caseapi.mailbox import PollerStats
from caseapi.secrets import SecretBox, generate_key, write_key_file
from nms.app.cli import main
from nms.app.mail import mail_poller
from nms.app.settings import Settings, load_settings
from nms.clock import SystemClock
from nms.noc.mail_metrics import OUTCOMES, MailCollector


def test_help_lists_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["mail", "deliver", "--help"])
    text = capsys.readouterr().out
    for line in ("0   accepted", "65  EX_DATAERR", "75  EX_TEMPFAIL", "mailbox_command"):
        assert line in text


def test_a_bad_configuration_is_a_temporary_failure_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # 75, not 2: the MTA keeps the mail queued until the configuration is fixed.
    config = tmp_path / "nms.yaml"
    config.write_text("mail:\n  imap:\n    host: mail.test\n")
    monkeypatch.setattr("sys.stdin", SimpleNamespace(buffer=io.BytesIO(b"From: a@b.test\r\n\r\nx")))
    assert main(["mail", "deliver", "--config", str(config)]) == 75
    assert "mail.imap: user: needed" in capsys.readouterr().err.replace("Value error, ", "")


def test_no_poller_without_a_host_and_its_metrics_with_one() -> None:
    async def ingest(raw: bytes, *, mailbox: str, uid: int | None) -> SimpleNamespace:
        return SimpleNamespace(outcome="held")

    assert mail_poller(Settings(), ingest, SystemClock()) is None
    settings = Settings(mail={"imap": {"host": "127.0.0.1", "user": "support", "password": "pw"}})
    registry = CollectorRegistry()
    poller = mail_poller(settings, ingest, SystemClock(), registry=registry)
    assert poller is not None
    poller.stats.ingested.update({"case_opened": 2, "held": 1})
    poller.stats.poll_errors = 3
    poller.stats.last_poll = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    page = generate_latest(registry).decode()
    assert 'nms_mail_ingested_total{outcome="case_opened"} 2.0' in page
    assert 'nms_mail_ingested_total{outcome="duplicate"} 0.0' in page
    assert "nms_mail_poll_errors_total 3.0" in page
    (stamp,) = [line for line in page.splitlines() if line.startswith("nms_mail_last_poll_t")]
    assert float(stamp.split()[1]) == poller.stats.last_poll.timestamp()


def test_outcomes_are_the_ingests_and_a_fresh_poller_shows_no_poll_time() -> None:
    from caseapi.mailbox import IngestOutcome

    assert set(OUTCOMES) == {outcome.value for outcome in IngestOutcome}
    names = {family.name for family in MailCollector(PollerStats()).collect()}
    assert "nms_mail_ingested" in names
    assert "nms_mail_last_poll_timestamp_seconds" not in names


def test_the_imap_password_may_be_encrypted_and_is_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = generate_key()
    key_file = tmp_path / "nms.key"
    write_key_file(key_file, [key])
    config = tmp_path / "nms.yaml"
    config.write_text(
        "mail:\n  imap:\n    host: mail.test\n    user: support\n"
        f"    password: {SecretBox([key]).encrypt('imap-s3cret')}\n"
        f"secrets: {{key_file: {key_file}}}\n"
    )
    imap = load_settings(config).mail.imap
    assert imap.secret() == "imap-s3cret"
    assert main(["config", "show", "--config", str(config)]) == 0
    assert "imap-s3cret" not in capsys.readouterr().out
