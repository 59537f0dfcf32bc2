"""Sender classification: loop, bounce, auto-reply, bulk, human (one rule per test)."""

from __future__ import annotations

import pytest

from caseapi.mail.classify import message_id_list, normalize_message_id
from caseapi.mail.parse import AutoKind, parse_mail
from tests.caseapi.mail.corpus import build

OWN = frozenset({"support@isp.example", "noc@isp.example"})
MARKER = "support@isp.example"


def kind(*headers: str, body: str = "Hello.\n") -> AutoKind:
    raw = build(
        *(headers if any(h.lower().startswith("from:") for h in headers) else
          ("From: Anna <anna@customer.example>", *headers)),
        "Subject: test",
        body=body,
    )  # fmt: skip
    return parse_mail(raw, own_addresses=OWN, loop_marker=MARKER).auto


def test_plain_mail_is_human() -> None:
    assert kind("To: support@isp.example") is AutoKind.HUMAN


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Auto-Submitted: auto-replied", AutoKind.AUTO_REPLY),
        ("Auto-Submitted: auto-generated", AutoKind.AUTO_REPLY),
        ("Auto-Submitted: auto-notified; owner-email=x@y", AutoKind.AUTO_REPLY),
        ("Auto-Submitted: no", AutoKind.HUMAN),
        ("Auto-Submitted: No (comment)", AutoKind.HUMAN),
        ("Precedence: auto_reply", AutoKind.AUTO_REPLY),
        ("Precedence: bulk", AutoKind.BULK),
        ("Precedence: list", AutoKind.BULK),
        ("Precedence: junk", AutoKind.BULK),
        ("Precedence: first-class", AutoKind.HUMAN),
        ("X-Autoreply: yes", AutoKind.AUTO_REPLY),
        ("X-Autorespond: Out of office", AutoKind.AUTO_REPLY),
        ("X-Auto-Response-Suppress: All", AutoKind.AUTO_REPLY),
        ("X-Auto-Response-Suppress: OOF, AutoReply", AutoKind.AUTO_REPLY),
        ("List-Id: <noc.lists.example>", AutoKind.BULK),
        ("List-Unsubscribe: <https://lists.example/u>", AutoKind.BULK),
        ("Return-Path: <>", AutoKind.AUTO_REPLY),
        ("Return-Path: <anna@customer.example>", AutoKind.HUMAN),
        ("X-Loop: support@isp.example", AutoKind.LOOP),
        ("X-Loop:  SUPPORT@isp.example ", AutoKind.LOOP),
        ("X-Loop: someone-else@example.org", AutoKind.HUMAN),
    ],
)
def test_header_rules(header: str, expected: AutoKind) -> None:
    assert kind(header) is expected


def test_auto_reply_wins_over_bulk_and_loop_wins_over_everything() -> None:
    assert kind("Auto-Submitted: auto-replied", "Precedence: bulk") is AutoKind.AUTO_REPLY
    assert kind("X-Loop: support@isp.example", "Precedence: bulk") is AutoKind.LOOP


def test_mail_from_our_own_address_is_a_loop_whatever_the_case() -> None:
    assert kind("From: Support <NOC@ISP.example>") is AutoKind.LOOP
    raw = build("From: noc@isp.example", "Subject: x", body="x")
    assert parse_mail(raw).auto is AutoKind.HUMAN  # without own_addresses it is not ours


@pytest.mark.parametrize(
    "sender", ["MAILER-DAEMON@mx.example", "postmaster@mx.example", "Mail Delivery Subsystem"]
)
def test_mailer_daemon_without_failure_shape_is_automatic_not_human(sender: str) -> None:
    assert kind(f"From: {sender}") is AutoKind.AUTO_REPLY


def test_mailer_daemon_with_bounce_subject_is_a_bounce_with_ids_from_in_reply_to() -> None:
    raw = build(
        "From: postmaster@mx.example",
        "Subject: Mail delivery failed: returning message to sender",
        "In-Reply-To: <orig-1@isp.example>",
        body="A message that you sent could not be delivered.\n",
    )
    parsed = parse_mail(raw)
    assert parsed.auto is AutoKind.BOUNCE
    assert parsed.bounce is not None
    assert parsed.bounce.original_message_ids == ("<orig-1@isp.example>",)
    assert parsed.bounce.recipients == ()


def _report(blocks: str, returned: str = "") -> bytes:
    return build(
        "From: MAILER-DAEMON@mx.example",
        "Subject: Delivery Status Notification",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="R"',
        body=(
            "--R\nContent-Type: text/plain\n\nReport.\n"
            f"--R\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx\n\n{blocks}\n"
            + returned
            + "--R--\n"
        ),
    )


def test_dsn_failed_recipients_status_and_original_id() -> None:
    raw = _report(
        "Final-Recipient: rfc822; A@x.example\nAction: failed\nStatus: 5.2.2 (mailbox full)\n\n"
        "Final-Recipient: rfc822; b@x.example\nAction: delivered\nStatus: 2.0.0\n\n"
        "Original-Recipient: rfc822;c@x.example\nAction: failed\nStatus: 5.1.1\n",
        "--R\nContent-Type: message/rfc822\n\nMessage-ID: <  sent-9@isp.example >\n\nbody\n",
    )
    parsed = parse_mail(raw)
    assert parsed.auto is AutoKind.BOUNCE
    assert parsed.bounce is not None
    assert parsed.bounce.recipients == ("a@x.example", "c@x.example")
    assert parsed.bounce.status == "5.2.2"
    assert parsed.bounce.original_message_ids == ("<sent-9@isp.example>",)
    assert parsed.text == "Report."


def test_dsn_with_only_delays_is_not_a_bounce() -> None:
    parsed = parse_mail(_report("Final-Recipient: rfc822; a@x\nAction: delayed\nStatus: 4.4.7\n"))
    assert parsed.auto is AutoKind.AUTO_REPLY
    assert parsed.bounce is None  # nothing failed: no notification is marked failed


def test_bounce_of_our_own_mail_from_our_address_is_still_a_loop() -> None:
    # Our own MTA's bounce sent "from" our support address: never answer it.
    raw = _report("Final-Recipient: rfc822; a@x\nAction: failed\nStatus: 5.0.0\n")
    raw = raw.replace(b"MAILER-DAEMON@mx.example", b"support@isp.example")
    assert parse_mail(raw, own_addresses=OWN).auto is AutoKind.LOOP


def test_message_id_normalization() -> None:
    assert normalize_message_id("  <abc@example.com>  ") == "<abc@example.com>"
    assert normalize_message_id("(c) < a b@c > (x)") == "<ab@c>"
    assert normalize_message_id("bare@id.example") == "<bare@id.example>"
    assert normalize_message_id("") is None
    assert normalize_message_id("<>") is None
    assert normalize_message_id("<" + "x" * 1000 + "@y>") is None
    assert message_id_list("<a@x> <b@x>\n\t<a@x> (comment <z@x>)") == ("<a@x>", "<b@x>")
    assert len(message_id_list(" ".join(f"<{n}@x>" for n in range(500)))) == 100
    assert message_id_list(" ".join(f"<{n}@x>" for n in range(500)))[-1] == "<499@x>"
