"""Parsing details: headers, addresses, dates, filenames, case references, quoted replies."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from caseapi.mail.parse import (
    MailParseError,
    find_case_ref,
    parse_mail,
    safe_filename,
    strip_quoted_reply,
)
from tests.caseapi.mail.corpus import build


@pytest.mark.parametrize(
    ("subject", "ref"),
    [
        ("Re: [CS-2026-000042] Link down", "CS-2026-000042"),
        ("RE: R: cs-2026-000042 still down", "CS-2026-000042"),
        ("Fwd: [CS-2025-123456] x [CS-2026-000001]", "CS-2025-123456"),
        ("CS-2026-42 is not a reference", None),
        ("XCS-2026-000042", None),
        ("", None),
    ],
)
def test_find_case_ref(subject: str, ref: str | None) -> None:
    assert find_case_ref(subject) == ref


def test_addresses_names_and_recipients() -> None:
    raw = build(
        'From: "=?UTF-8?Q?Bianchi=2C_Anna?=" <Anna.Bianchi@Customer.Example>',
        "To: a@x.example, Bob <b@x.example>, a@x.example",
        "Cc: undisclosed-recipients:;, c@x.example",
        "Subject: =?iso-8859-1?q?R=E9seau?= =?iso-8859-1?q?_coup=E9?=",
        "Date: Tue, 8 Dec 2026 23:30:00 -0500",
        body="x\n",
    )
    parsed = parse_mail(raw)
    assert parsed.sender == "anna.bianchi@customer.example"
    assert parsed.sender_name == "Bianchi, Anna"
    assert parsed.recipients == ("a@x.example", "b@x.example", "c@x.example")
    assert parsed.subject == "Réseau coupé"
    assert parsed.date == datetime(2026, 12, 9, 4, 30, tzinfo=UTC)


@pytest.mark.parametrize("header", ["Date: 32 Foo 2026", "Date: Mon, 7 Dec 99999 10:00:00 +0000"])
def test_bad_dates_become_none_with_a_defect(header: str) -> None:
    parsed = parse_mail(build("From: a@x.example", header, body="x"))
    assert parsed.date is None
    assert any("Date" in defect for defect in parsed.defects)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty input"),
        (b" \r\n\t\r\n", "empty input"),
        (b"\x00\x01garbage without any header\n\nx", "no mail header fields"),
        (b"Foo: bar\r\nBaz: qux\r\n\r\nbody", "no mail header fields"),
    ],
)
def test_not_a_mail_raises_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(MailParseError) as caught:
        parse_mail(raw)
    assert reason in caught.value.reason
    assert caught.value.code == "mail_parse_error"


def test_pathological_nesting_is_refused_not_crashed() -> None:
    raw = b"From: a@x.example\r\nContent-Type: message/rfc822\r\n\r\n" * 3000 + b"body"
    with pytest.raises(MailParseError, match="unparseable message structure"):
        parse_mail(raw)


def test_long_text_is_cut_with_a_defect() -> None:
    parsed = parse_mail(build("From: a@x.example", body="y" * 1_200_000))
    assert len(parsed.text) == 1_000_000
    assert "text/plain part longer than 1000000 characters cut" in parsed.defects


@pytest.mark.parametrize(
    ("raw_name", "content_type", "expected"),
    [
        ("../../etc/passwd", "text/plain", "passwd"),
        ("..\\..\\boot.ini", "text/plain", "boot.ini"),
        ("C:\\Users\\x\\report.pdf", "application/pdf", "report.pdf"),
        ("con.txt", "text/plain", "_con.txt"),
        ("LPT1", "text/plain", "_LPT1"),
        ("a\x00b\x07c.zip", "application/zip", "abc.zip"),
        ('what?<is>"this"|*.txt', "text/plain", "what__is__this___.txt"),
        ("   ..hidden.  ", "text/plain", "hidden"),
        ("", "image/png", "attachment-3.png"),
        (None, "application/pdf", "attachment-3.pdf"),
        ("..", "application/x-unknown-thing", "attachment-3.bin"),
        ("/", "text/calendar", "attachment-3.ics"),
        ("é" * 300 + ".docx", "application/octet-stream", "é" * 145 + ".docx"),
    ],
)
def test_safe_filename(raw_name: str | None, content_type: str, expected: str) -> None:
    assert safe_filename(raw_name, content_type=content_type, index=3) == expected


def test_inline_image_and_attachment_flags() -> None:
    raw = build(
        "From: a@x.example",
        'Content-Type: multipart/related; boundary="r"',
        body=(
            '--r\nContent-Type: text/html\n\n<p>see <img src="cid:i1" alt="graph"></p>\n'
            "--r\nContent-Type: image/gif\nContent-ID: <i1>\n\nGIF89a\n"
            "--r\nContent-Type: application/pdf\nContent-Disposition: attachment\n\n%PDF\n"
            "--r--\n"
        ),
    )
    parsed = parse_mail(raw)
    assert parsed.text == "see [graph]"
    assert [(a.filename, a.inline, a.data) for a in parsed.attachments] == [
        ("attachment-1.gif", True, b"GIF89a"),
        ("attachment-2.pdf", False, b"%PDF"),
    ]


def test_html_alternative_is_used_when_plain_is_empty() -> None:
    raw = build(
        "From: a@x.example",
        'Content-Type: multipart/alternative; boundary="a"',
        body=(
            "--a\nContent-Type: text/plain\n\n   \n"
            "--a\nContent-Type: text/html\n\n<p>Only <b>HTML</b> has text</p>\n--a--\n"
        ),
    )
    assert parse_mail(raw).text == "Only HTML has text"


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("Thanks!\n\nOn Mon, 7 Dec 2026, Support wrote:\n> old", "Thanks!"),
        ("Grazie.\n\nIl giorno lun 7 dic 2026 Supporto <s@x>\nha scritto:\n> vecchio", "Grazie."),
        ("Ok.\n\n-----Original Message-----\nFrom: s@x\nSent: Monday\nold", "Ok."),
        ("Ok.\n\n-----Messaggio originale-----\nDa: s@x\nold", "Ok."),
        ("Ok.\n________________________________\nFrom: S\nSent: Monday\nTo: A\nold", "Ok."),
        ("Ok.\n\nDa: Supporto <s@x>\nInviato: lunedì 7 dicembre\nA: A\nold", "Ok."),
        ("Top.\n> quoted\nAnswer inline.\n> more quoted", "Top.\nAnswer inline."),
        ("Body.\n\n-- \nAnna Bianchi\nACME", "Body."),
        ("> only a quote", "> only a quote"),
        ("On Mon, Support wrote:\n> all quoted", "On Mon, Support wrote:\n> all quoted"),
        (
            "From: this is just prose\nno sent line follows",
            "From: this is just prose\nno sent line follows",
        ),
        (
            "FYI\n\n---------- Forwarded message ---------\nFrom: m@x\nDate: Mon\nalarm",
            "FYI\n\n---------- Forwarded message ---------\nFrom: m@x\nDate: Mon\nalarm",
        ),
    ],
)
def test_strip_quoted_reply(text: str, reply: str) -> None:
    assert strip_quoted_reply(text) == reply


def test_reply_text_keeps_full_text_alongside() -> None:
    raw = build(
        "From: a@x.example",
        body="New info.\n\nOn Mon, 7 Dec 2026 at 09:00, Support <s@isp.example> wrote:\n> old\n",
    )
    parsed = parse_mail(raw)
    assert parsed.reply_text == "New info."
    assert parsed.text.endswith("> old")
