"""End to end: the e-mail channel through ``nms run`` as a real subprocess.

A real Dovecot (``tests.dovecot``: its own port, user and maildir) is the support
mailbox, read by the IMAP poller of ``nms run``; the SMTP receiver of the
notification tests (aiosmtpd) catches what ``nms run`` sends. Test mail goes in by
IMAP APPEND, as an MTA's delivery looks to the reader. Everything is asserted from
the outside: the HTTP API (cases, comments, the held list), the mails sent, and the
folders of the mailbox.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import Message
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import pytest

from tests.caseapi.notification_fixtures import SmtpSink, free_port
from tests.dovecot import Dovecot, dovecot_fixture  # noqa: F401 - fixture
from tests.nms.nms_process import NmsProcess, running, wait_for

pytestmark = [pytest.mark.slow]

SUPPORT = "support@example.test"
ALICE = "alice@acme.test"  # ACME's contact, English
MARIO = "mario@rossi.test"  # Rossi's contact, Italian
POLL = 1.0
#: IDLE makes a new mail visible at once; this is the slack of a loaded CI machine.
SLACK = 8.0

INVENTORY = """\
customers:
  - id: acme
    name: ACME Manufacturing
    contacts:
      - {email: alice@acme.test, name: Alice Smith, language: en, roles: [notify, technical]}
  - id: rossi
    name: Rossi SpA
    contacts:
      - {email: mario@rossi.test, name: Mario Rossi, language: it, roles: [notify]}
ntus: []
"""


def mail(
    sender: str,
    subject: str,
    body: str,
    *,
    message_id: str,
    in_reply_to: str | None = None,
    headers: tuple[str, ...] = (),
) -> bytes:
    lines = [
        f"From: {sender}",
        f"To: {SUPPORT}",
        f"Subject: {subject}",
        f"Message-ID: {message_id}",
        "Date: Sun, 06 Dec 2026 10:00:00 +0000",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ]
    if in_reply_to:
        lines += [f"In-Reply-To: {in_reply_to}", f"References: {in_reply_to}"]
    lines += list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()


def bounce(original_id: str) -> bytes:
    """A delivery status notification (RFC 3464) for a mail of ours."""
    return (
        "From: MAILER-DAEMON@acme.test\r\n"
        f"To: {SUPPORT}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-1@acme.test>\r\nAuto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.acme.test\r\n\r\n"
        "Final-Recipient: rfc822; gone@acme.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {original_id}\r\nFrom: {SUPPORT}\r\nTo: gone@acme.test\r\n\r\n"
        "--b--\r\n"
    ).encode()


def recipients(message: Message) -> set[str]:
    return {address.lower() for _, address in getaddresses(message.get_all("To", []))}


def body(message: Message) -> str:
    """The text/plain part(s) of ``message``, decoded."""
    texts = []
    for part in message.walk():
        payload = part.get_payload(decode=True)
        if part.get_content_type() == "text/plain" and isinstance(payload, bytes):
            texts.append(payload.decode(part.get_content_charset() or "utf-8"))
    assert texts, f"no text part in {message['Subject']!r}"
    return "\n".join(texts)


def ids(header: str | None) -> list[str]:
    return (header or "").split()


class MailWorld:
    """Dovecot, the SMTP receiver, and ``nms run`` reading the one and sending to the other."""

    def __init__(self, tmp_path: Path, dovecot: Dovecot, sink: SmtpSink, **env: str) -> None:
        self.dovecot = dovecot
        self.sink = sink
        inventory = tmp_path / "inventory.yaml"
        inventory.write_text(INVENTORY)
        self.nms = NmsProcess(
            workdir=tmp_path,
            inventory=inventory,
            database=tmp_path / "nms.db",
            env={
                "NMS_PROBES__ICMP__ENABLED": "false",
                # A solved case may close at once (the follow-up scenario).
                "NMS_CASES__MONITORING_WINDOW__P1": "1ms",
                "NMS_CASES__MONITORING_WINDOW__P2": "1ms",
                "NMS_MAIL__ADDRESS": SUPPORT,
                "NMS_MAIL__RATE_LIMIT": "100000/hour",
                "NMS_MAIL__IMAP__HOST": "127.0.0.1",
                "NMS_MAIL__IMAP__PORT": str(dovecot.port),
                "NMS_MAIL__IMAP__SECURITY": "none",
                "NMS_MAIL__IMAP__USER": dovecot.user,
                "NMS_MAIL__IMAP__PASSWORD": dovecot.password,
                "NMS_MAIL__IMAP__POLL_INTERVAL": f"{POLL}s",
                "NMS_MAIL__IMAP__TIMEOUT": "10s",
                "NMS_NOTIFICATIONS__SMTP_HOST": "127.0.0.1",
                "NMS_NOTIFICATIONS__SMTP_PORT": str(sink.port),
                "NMS_NOTIFICATIONS__SMTP_FROM": SUPPORT,
                "NMS_NOTIFICATIONS__INTERVAL": "200ms",
                **env,
            },
        )

    def send(self, *raws: bytes) -> None:
        self.dovecot.append(raws)

    def processed(self) -> bool:
        """Every mail of the inbox has been ingested and moved out."""
        return not self.dovecot.uids("INBOX")

    def wait_processed(self, timeout: float = POLL + SLACK) -> None:
        wait_for("the inbox to be read", self.processed, timeout=timeout, interval=0.1)

    def mails_to(self, address: str) -> list[Message]:
        return [m for m in list(self.sink.messages) if address in recipients(m)]

    def wait_mail(self, address: str, contains: str, *, after: int = 0) -> Message:
        def probe() -> Message | None:
            for message in self.mails_to(address)[after:]:
                if contains in str(message["Subject"]):
                    return message
            return None

        return wait_for(f"a mail to {address} about {contains!r}", probe, timeout=POLL + SLACK)

    def held(self, **params: Any) -> list[dict[str, Any]]:
        return list(self.nms.get("/v1/mail/held", **params)["data"])

    def comments(self, ref: str) -> list[dict[str, Any]]:
        return list(self.nms.get(f"/v1/cases/{ref}/comments")["data"])

    def case(self, ref: str) -> dict[str, Any]:
        return dict(self.nms.get(f"/v1/cases/{ref}"))

    def transition(self, ref: str, to: str, **extra: str) -> None:
        response = self.nms.call("POST", f"/v1/cases/{ref}/transitions", json={"to": to, **extra})
        assert response.status_code == 200, response.text


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    receiver = SmtpSink(port=free_port())
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


def test_the_mail_channel_end_to_end(tmp_path: Path, dovecot: Dovecot, sink: SmtpSink) -> None:
    world = MailWorld(tmp_path, dovecot, sink)
    with running(world.nms):
        # A known contact's mail opens a case and is acknowledged within one poll.
        started = time.monotonic()
        world.send(
            mail(ALICE, "Router down at HQ", "Our line is dead.", message_id="<a1@acme.test>")
        )
        case = wait_for(
            "the case of alice's mail",
            lambda: next(iter(world.nms.cases(customer="acme")), None),
            timeout=POLL + SLACK,
        )
        ref = case["ref"]
        ack = world.wait_mail(ALICE, f"[{ref}] We received your request")
        assert time.monotonic() - started < POLL + SLACK
        assert case["source"] == "email"
        assert ack["In-Reply-To"] == "<a1@acme.test>"
        assert "<a1@acme.test>" in ids(ack["References"])
        assert ack["Auto-Submitted"] == "auto-replied"
        assert SUPPORT in str(ack["Reply-To"]) and ack["X-Loop"] == SUPPORT
        assert ack["Message-ID"]

        # A reply with the reference: a public comment, and the case resumes.
        world.transition(ref, "in_progress")
        world.transition(ref, "waiting_customer", reason="Which LED is red?")
        world.send(
            mail(
                ALICE, f"Re: [{ref}] Router down at HQ", "The red one.", message_id="<a2@acme.test>"
            )
        )
        wait_for(
            "the reply as a comment", lambda: len(world.comments(ref)) >= 1, timeout=POLL + SLACK
        )
        first = world.comments(ref)[-1]
        assert "The red one." in first["body"] and first["visibility"] == "public"
        assert world.case(ref)["status"] == "in_progress"

        # A reply with only In-Reply-To (no reference in the subject) lands on the same case.
        world.send(
            mail(
                ALICE,
                "Re: Router down at HQ",
                "Also the power LED blinks.",
                message_id="<a3@acme.test>",
                in_reply_to=str(ack["Message-ID"]),
            )
        )
        wait_for("the threaded reply", lambda: len(world.comments(ref)) >= 2, timeout=POLL + SLACK)
        assert "power LED" in world.comments(ref)[-1]["body"]
        assert len(world.nms.cases(customer="acme")) == 1

        # The staff reply the system sends threads on the conversation.
        before = len(world.mails_to(ALICE))
        response = world.nms.call(
            "POST", f"/v1/cases/{ref}/comments", json={"body": "An engineer is on the way."}
        )
        assert response.status_code == 201, response.text
        update = world.wait_mail(ALICE, f"[{ref}]", after=before)
        assert "An engineer is on the way." in body(update)
        # The conversation so far: alice's mails and every mail we sent her on the case.
        ours = {str(m["Message-ID"]) for m in world.mails_to(ALICE)[:before]}
        thread = {"<a1@acme.test>", "<a2@acme.test>", "<a3@acme.test>"} | ours
        assert update["In-Reply-To"] in thread
        assert set(ids(update["References"])) & thread
        assert update["Message-ID"] not in thread
        assert update["Auto-Submitted"] == "auto-generated"

        # A forged sender (another customer's contact) is held, not appended.
        count = len(world.comments(ref))
        world.send(
            mail(MARIO, f"Re: [{ref}] Router down", "Close it.", message_id="<f1@rossi.test>")
        )
        world.wait_processed()
        (forged,) = world.held(sender=MARIO)
        assert forged["reason"] == "sender_not_contact"
        assert len(world.comments(ref)) == count

        # An unknown sender is held in the unmatched list; no case.
        world.send(mail("who@nowhere.test", "Hello", "Anyone?", message_id="<u1@nowhere.test>"))
        world.wait_processed()
        (unknown,) = world.held(sender="who@nowhere.test")
        assert unknown["reason"] == "unknown_sender"
        assert not world.nms.cases(customer="rossi")

        # An auto-reply and a bounce produce no answer (two robots stop at once).
        sent = len(sink.messages)
        world.send(
            mail(
                ALICE,
                f"Out of office: Re: [{ref}]",
                "I am away.",
                message_id="<ooo@acme.test>",
                headers=("Auto-Submitted: auto-replied",),
            ),
            bounce(str(update["Message-ID"])),
        )
        world.wait_processed()
        time.sleep(3 * 0.2 + 0.5)  # three dispatcher rounds: anything queued would be sent
        assert len(sink.messages) == sent
        assert len(world.comments(ref)) == count

        # A 20 MB mail is refused, held with the staff note (headers kept).
        big = mail(ALICE, "Photos", "x" * (20 * 1024 * 1024), message_id="<big@acme.test>")
        world.send(big)
        world.wait_processed(timeout=POLL + SLACK + 10)
        (too_large,) = world.held(reason="too_large")
        assert too_large["sender"] == ALICE and too_large["subject"] == "Photos"
        assert len(world.nms.cases(customer="acme")) == 1

        # A reply to a closed case opens a linked follow-up.
        world.transition(
            ref, "solved", resolution_method="remote", root_cause_category="customer_side"
        )
        world.transition(ref, "closed")
        before = len(world.mails_to(ALICE))
        world.send(
            mail(ALICE, f"Re: [{ref}] Router down", "Down again!", message_id="<a4@acme.test>")
        )
        follow_up = wait_for(
            "the follow-up case",
            lambda: next((c for c in world.nms.cases(customer="acme") if c["ref"] != ref), None),
            timeout=POLL + SLACK,
        )
        notice = world.wait_mail(ALICE, f"[{follow_up['ref']}]", after=before)
        assert ref in str(notice["Subject"]) or ref in body(notice)
        assert ref in str(world.nms.get(f"/v1/cases/{follow_up['ref']}"))

        # The Italian contact gets the Italian templates.
        world.send(
            mail(MARIO, "Linea assente", "Nessuna connessione.", message_id="<m1@rossi.test>")
        )
        italian = world.wait_mail(MARIO, "Abbiamo ricevuto la vostra richiesta")
        assert all("stato:" in str(m["Subject"]) for m in world.mails_to(MARIO))
        assert "Gentile" in body(italian)

        assert world.processed()
        assert not dovecot.flags("INBOX")

        # nms mail deliver (the MTA pipe) on the same database: the exit codes.
        good = mail(ALICE, "Pipe test", "By the MTA.", message_id="<p1@acme.test>")
        code, err = deliver(world.nms, good)
        assert (code, "accepted: case_opened" in err) == (0, True), err
        assert any(c["summary"] == "Pipe test" for c in world.nms.cases(customer="acme"))
        code, err = deliver(world.nms, good)
        assert (code, "accepted: duplicate" in err) == (0, True), err
        held = mail("who@nowhere.test", "Pipe", "Unknown.", message_id="<p2@nowhere.test>")
        code, err = deliver(world.nms, held)
        assert (code, "accepted: held" in err) == (0, True), err
        code, err = deliver(world.nms, b"\x00\x01 this is not a mail\n\nat all")
        assert (code, "not a mail" in err) == (65, True), err
        unreachable = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nms"
        code, err = deliver(world.nms, good, database=unreachable)
        assert code == 75, err


def test_kill_9_during_ingest_loses_and_duplicates_nothing(
    tmp_path: Path, dovecot: Dovecot, sink: SmtpSink
) -> None:
    total = 200
    world = MailWorld(tmp_path, dovecot, sink)
    world.send(
        *(
            mail(ALICE, f"Request {n:03d}", f"marker-{n:03d}", message_id=f"<k{n:03d}@acme.test>")
            for n in range(total)
        )
    )
    world.nms.start()
    try:
        wait_for(
            "about half of the mails to be read",
            lambda: len(dovecot.uids("Processed")) >= total // 3,
            timeout=60,
            interval=0.05,
        )
        world.nms.kill()
        left = len(dovecot.uids("INBOX"))
        assert 0 < left < total, f"kill -9 came too late or too early ({left} left)"
        world.nms.start()
        wait_for("every mail to be read", world.processed, timeout=90, interval=0.2)
        cases = world.nms.cases(customer="acme")
    finally:
        if world.nms.proc is not None and world.nms.proc.poll() is None:
            world.nms.stop()
    subjects = sorted(c["summary"] for c in cases)
    assert subjects == [f"Request {n:03d}" for n in range(total)], "lost or duplicated"
    assert len(dovecot.uids("Processed")) == total


def deliver(nms: NmsProcess, raw: bytes, *, database: str | None = None) -> tuple[int, str]:
    """``nms mail deliver`` with ``raw`` on standard input: (exit code, standard error)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NMS_")}
    env.update({k: v for k, v in nms.env.items() if k.startswith("NMS_MAIL__")})
    done = subprocess.run(
        [
            sys.executable, "-m", "nms.app.cli", "mail", "deliver",
            "--database", database or f"sqlite+aiosqlite:///{nms.database}",
        ],
        input=raw, capture_output=True, timeout=60, cwd=nms.workdir, env=env,
    )  # fmt: skip
    return done.returncode, done.stderr.decode(errors="replace")
