"""The IMAP poller against a real Dovecot, with a stand-in for the ingest.

The stand-in (``Ledger``) plays ``MailIngestService.ingest``'s contract: it "commits"
each mail once by Message-ID and answers ``duplicate`` after that. Everything on the
IMAP side is real: the Dovecot of ``tests.dovecot``, its folders, flags and IDLE.
The real ingest through ``nms run`` is in ``tests/nms/app/test_mail_e2e.py``.
"""

from __future__ import annotations

import asyncio
import email
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from caseapi.database import DatabaseUnavailableError
from caseapi.mail.imap import FAILED, INGESTED, ImapAuthError, ImapConnection, ImapError
from caseapi.mail.imap_config import ImapSettings
from caseapi.mail.poller import ImapPoller
from tests.dovecot import Dovecot, dovecot_fixture, dovecot_tls_fixture  # noqa: F401

MAX_SIZE = 64 * 1024


def mail(n: int, *, body: str = "Hello.", size: int = 0) -> bytes:
    padding = ("x" * 76 + "\r\n") * (size // 78) if size else ""
    return (
        f"From: Customer {n} <c{n}@customer.test>\r\n"
        f"To: support@example.test\r\nSubject: Mail {n}\r\n"
        f"Message-ID: <m{n}@customer.test>\r\nDate: Sun, 06 Dec 2026 10:00:00 +0000\r\n\r\n"
        f"{body}\r\n{padding}"
    ).encode()


@dataclass(frozen=True)
class Result:
    outcome: str
    case_ref: str | None = None
    reason: str | None = None


@dataclass
class Ledger:
    """The ingest's contract: once per Message-ID, committed before it returns."""

    committed: dict[str, bytes] = field(default_factory=dict)
    calls: list[tuple[str | None, str, int | None, int]] = field(default_factory=list)
    fail: set[str] = field(default_factory=set)
    crash_after_commit: set[str] = field(default_factory=set)
    database_down: bool = False

    async def ingest(self, raw: bytes, *, mailbox: str, uid: int | None) -> Result:
        message_id = email.message_from_bytes(raw)["Message-ID"]
        self.calls.append((message_id, mailbox, uid, len(raw)))
        if self.database_down:
            raise DatabaseUnavailableError("connection refused", url="sqlite+aiosqlite:///x.db")
        if message_id in self.fail:
            raise ValueError("a bug in the ingest")
        if message_id in self.committed:
            return Result("duplicate")
        self.committed[message_id] = raw
        if message_id in self.crash_after_commit:
            self.crash_after_commit.discard(message_id)
            raise asyncio.CancelledError  # the process dies between commit and move
        return Result("case_opened", "CS-2026-000001")


async def eventually(condition: Callable[[], bool], seconds: float) -> None:
    """Wait until ``condition()`` holds; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds / 0.05) + 1):
        if condition():
            return
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    raise AssertionError(f"not true within {seconds} s")


def settings(server: Dovecot, **overrides: Any) -> ImapSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.port,
        "security": "none",
        "user": server.user,
        "password": server.password,
        "poll_interval": "30s",
        "timeout": "5s",
    }
    values.update(overrides)
    return ImapSettings(**values)


def poller(server: Dovecot, ledger: Ledger, **overrides: Any) -> ImapPoller:
    return ImapPoller(
        settings=settings(server, **overrides),
        ingest=ledger.ingest,
        max_size=MAX_SIZE,
        now=lambda: datetime.now(UTC),
    )


async def test_each_mail_is_ingested_then_moved(dovecot: Dovecot) -> None:
    dovecot.append(mail(n) for n in range(5))
    ledger = Ledger()
    reader = poller(dovecot, ledger)

    first = await reader.poll_once()
    again = await reader.poll_once()

    assert (first.found, first.ingested, again.found) == (5, 5, 0)
    assert sorted(ledger.committed) == sorted(f"<m{n}@customer.test>" for n in range(5))
    assert dovecot.uids("INBOX") == []
    assert len(dovecot.uids("Processed")) == 5
    mailbox = ledger.calls[0][1]
    assert mailbox.startswith(f"imap://{dovecot.user}@127.0.0.1/INBOX;UIDVALIDITY=")
    assert [call[2] for call in ledger.calls] == [1, 2, 3, 4, 5]
    assert reader.stats.ingested == {"case_opened": 5}
    assert reader.stats.last_poll is not None


async def test_flag_mode_leaves_the_mail_flagged_and_reads_it_once(dovecot: Dovecot) -> None:
    dovecot.append([mail(1), mail(2)])
    ledger = Ledger()
    reader = poller(dovecot, ledger, after="flag")

    await reader.poll_once()
    await reader.poll_once()

    assert len(ledger.calls) == 2
    assert all({INGESTED, "\\Seen"} <= flags for flags in dovecot.flags().values())


async def test_crash_between_commit_and_move_is_neither_lost_nor_duplicated(
    dovecot: Dovecot,
) -> None:
    dovecot.append(mail(n) for n in range(3))
    ledger = Ledger(crash_after_commit={"<m1@customer.test>"})
    reader = poller(dovecot, ledger)

    with pytest.raises(asyncio.CancelledError):
        await reader.poll_once()
    assert dovecot.uids("INBOX") == [2, 3]  # committed but not moved: still there

    restarted = poller(dovecot, ledger)
    result = await restarted.poll_once()

    assert result.found == 2
    assert restarted.stats.ingested == {"duplicate": 1, "case_opened": 1}
    assert len(ledger.committed) == 3
    assert dovecot.uids("INBOX") == []
    assert len(dovecot.uids("Processed")) == 3


async def test_a_failing_mail_does_not_stop_the_others_and_is_given_up(
    dovecot: Dovecot,
) -> None:
    dovecot.append(mail(n) for n in range(3))
    ledger = Ledger(fail={"<m0@customer.test>"})
    reader = poller(dovecot, ledger, max_failures=2)

    first = await reader.poll_once()
    assert (first.found, first.ingested) == (3, 2)
    assert dovecot.uids("INBOX") == [1]
    await reader.poll_once()
    third = await reader.poll_once()

    assert third.found == 0
    assert FAILED in dovecot.flags()[1]
    assert reader.stats.gave_up == 1
    assert sum(1 for call in ledger.calls if call[0] == "<m0@customer.test>") == 2


async def test_database_unavailable_leaves_every_mail_and_counts_nothing(
    dovecot: Dovecot,
) -> None:
    dovecot.append([mail(1), mail(2)])
    ledger = Ledger(database_down=True)
    reader = poller(dovecot, ledger, max_failures=1)

    with pytest.raises(ImapError, match="database unavailable"):
        await reader.poll_once()

    assert len(ledger.calls) == 1  # the round stopped at the first mail
    assert dovecot.uids("INBOX") == [1, 2]
    assert all(FAILED not in flags for flags in dovecot.flags().values())


async def test_a_mail_over_max_size_reaches_the_ingest_cut_at_max_size_plus_one(
    dovecot: Dovecot,
) -> None:
    dovecot.append([mail(1, size=3 * MAX_SIZE), mail(2)])
    ledger = Ledger()

    await poller(dovecot, ledger).poll_once()

    sizes = {call[0]: call[3] for call in ledger.calls}
    assert sizes["<m1@customer.test>"] == MAX_SIZE + 1
    assert sizes["<m2@customer.test>"] == len(mail(2))
    assert dovecot.uids("INBOX") == []


async def test_idle_reads_a_new_mail_at_once(dovecot: Dovecot) -> None:
    ledger = Ledger()
    reader = poller(dovecot, ledger, poll_interval="60s")
    task = asyncio.create_task(reader.run())
    try:
        await eventually(lambda: reader.stats.last_poll is not None, 10)
        await asyncio.sleep(0.3)  # into IDLE
        await asyncio.to_thread(dovecot.append, [mail(7)])
        await eventually(lambda: bool(ledger.committed), 10)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert list(ledger.committed) == ["<m7@customer.test>"]  # long before the 60 s poll


async def test_run_survives_a_server_restart(dovecot: Dovecot) -> None:
    ledger = Ledger()
    reader = poller(dovecot, ledger, poll_interval="200ms", idle=False)
    task = asyncio.create_task(reader.run())
    try:
        await asyncio.to_thread(dovecot.stop)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(dovecot.start)
        await asyncio.to_thread(dovecot.append, [mail(3)])
        await eventually(lambda: bool(ledger.committed), 20)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert list(ledger.committed) == ["<m3@customer.test>"]
    assert reader.stats.poll_errors >= 1


@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_tls_and_starttls_check_the_certificate(
    dovecot_tls: Dovecot, security: str, tmp_path: Path
) -> None:
    dovecot_tls.append([mail(1)])
    port = dovecot_tls.tls_port if security == "tls" else dovecot_tls.port
    ledger = Ledger()
    good = poller(dovecot_tls, ledger, security=security, port=port, ca_file=dovecot_tls.ca_file)

    assert (await good.poll_once()).ingested == 1

    other_ca = tmp_path / "other.pem"
    await asyncio.to_thread(shutil.copy, "/etc/ssl/certs/ca-certificates.crt", other_ca)
    untrusted = settings(dovecot_tls, security=security, port=port, ca_file=other_ca)
    with pytest.raises(ImapError, match="CERTIFICATE_VERIFY_FAILED"):
        await ImapConnection.open(untrusted)


async def test_a_wrong_password_is_an_auth_error(dovecot: Dovecot) -> None:
    with pytest.raises(ImapAuthError, match="refused"):
        await ImapConnection.open(settings(dovecot, password="wrong"))


async def test_password_file_is_read(dovecot: Dovecot, tmp_path: Path) -> None:
    secret = tmp_path / "imap-password"
    secret.write_text(dovecot.password + "\n")
    connection = await ImapConnection.open(settings(dovecot, password=None, password_file=secret))
    await connection.close()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"host": "mail.test"}, "user: needed"),
        ({"host": "mail.test", "user": "u"}, "exactly one of password and password_file"),
        ({"host": "mail.test", "user": "u", "password": "p", "move_to": "INBOX"}, "move_to"),
        ({"folder": 'IN"BOX'}, "folder name"),
        ({"poll_interval": "0s"}, "poll_interval"),
        ({"security": "ssl"}, "security"),
        ({"idel": True}, "idel"),
    ],
)
def test_settings_name_what_is_wrong(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ImapSettings(**values)


def test_settings_defaults() -> None:
    plain = ImapSettings(host="mail.test", user="u", password="s3cr3t-pw", security="starttls")
    assert (plain.effective_port, ImapSettings().effective_port, ImapSettings().enabled) == (
        143,
        993,
        False,
    )
    assert "s3cr3t-pw" not in repr(plain)
