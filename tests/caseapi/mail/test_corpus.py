"""The corpus of awkward mail: each message parses to the expected outcome, never a traceback.

Issue 14: "at least 30 awkward real-world-shaped messages ... none produces a traceback".
Every entry of ``corpus.CORPUS`` has an expectation here (a test checks none is missing),
and a Hypothesis property mutates the corpus and feeds arbitrary bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caseapi.mail.parse import AutoKind, MailParseError, ParsedMail, parse_mail
from tests.caseapi.mail.corpus import CORPUS

OWN = frozenset({"support@isp.example"})
MARKER = "support@isp.example"


@dataclass(frozen=True)
class Expect:
    subject: str
    sender: str
    auto: AutoKind = AutoKind.HUMAN
    text: tuple[str, ...] = ()  # snippets that must be in text
    absent: tuple[str, ...] = ()  # snippets that must not be in text
    reply: str | None = None  # reply_text exactly, when the quote is stripped
    files: tuple[str, ...] = ()
    message_id: str | None = "<>"  # "<>": not checked
    defects: tuple[str, ...] = ()  # snippets that must be in some defect
    bounce_ids: tuple[str, ...] | None = None
    bounce_to: tuple[str, ...] | None = None
    extra: dict[str, object] = field(default_factory=dict)


ANNA = "anna@customer.example"

EXPECTED: dict[str, Expect | str] = {
    "outlook_html_only": Expect(
        "RE: [CS-2026-000042] Link down",
        ANNA,
        text=("still down since 08:00", "our status page [https://status.customer.example/x]"),
        absent=("alert", "MsoNormal", "pixel.gif", "<p", "<html", "&lt;"),
        reply=(
            "The link is still down since 08:00.\n\n"
            "See our status page [https://status.customer.example/x]."
        ),
        message_id="<AM0PR01MB1234.eurprd01.prod.outlook.com>",
        extra={
            "in_reply_to": ("<case-42-1@isp.example>",),
            "references": ("<case-42-0@isp.example>", "<case-42-1@isp.example>"),
            "date": datetime(2026, 12, 7, 8, 15, tzinfo=UTC),
        },
    ),
    "apple_mail_nested": Expect(
        "Router photos",
        "luca@customer.example",
        text=("Photos of the router attached.",),
        files=("IMG_0001.jpeg",),
        extra={"date": datetime(2026, 12, 8, 13, 2, 11, tzinfo=UTC)},
    ),
    "gmail_reply_en": Expect(
        "Re: [CS-2026-000007] Packet loss",
        ANNA,
        text=("30% loss", "> We are looking into it."),
        reply="It happened again at 10:40, about 30% loss.",
        extra={"in_reply_to": ("<out-7@isp.example>",)},
    ),
    "gmail_html_only_reply": Expect(
        "Re: [CS-2026-000009] Jitter",
        ANNA,
        text=("Jitter is back to normal \u2014 thanks.", "> We changed the queue profile."),
        reply="Jitter is back to normal \u2014 thanks.",
        extra={"references": ("<out-9@isp.example>",)},
    ),
    "gmail_reply_it": Expect(
        "Re: [CS-2026-000008] Rallentamenti",
        ANNA,
        text=("Il problema è ancora presente", "ha scritto:", "> Stiamo verificando."),
        reply="Il problema è ancora presente, grazie.",
    ),
    "exchange_ndr": Expect(
        "Undeliverable: [CS-2026-000042] Outage notice",
        "postmaster@customer.example",
        AutoKind.BOUNCE,
        text=("couldn't be delivered",),
        absent=("Reporting-MTA", "Final-Recipient"),
        bounce_ids=("<notice-42-1@isp.example>",),
        bounce_to=("noc@customer.example",),
        extra={"bounce_status": "5.1.10"},
    ),
    "postfix_dsn": Expect(
        "Undelivered Mail Returned to Sender",
        "mailer-daemon@mx.isp.example",
        AutoKind.BOUNCE,
        text=("could not\nbe delivered",),
        absent=("Planned works",),
        bounce_ids=("<notice-43-1@isp.example>",),
        bounce_to=("ops@customer.example",),  # the delayed cc@ is not a failure
        extra={"bounce_status": "5.1.1"},
    ),
    "qmail_bounce": Expect(
        "failure notice",
        "mailer-daemon@mail.customer.example",
        AutoKind.BOUNCE,
        message_id=None,
        bounce_ids=("<notice-44-1@isp.example>",),
        bounce_to=("gone@customer.example",),
        defects=("no Message-ID", "Date without a time zone"),
    ),
    "delay_dsn": Expect(
        "Delayed Mail (still being retried)",
        "mailer-daemon@mx.isp.example",
        AutoKind.AUTO_REPLY,
        text=("Still trying.",),
    ),
    "vacation": Expect(
        "Fuori sede / Out of office: [CS-2026-000042] Link down",
        "paolo@customer.example",
        AutoKind.AUTO_REPLY,
        text=("fuori sede",),
    ),
    "outlook_oof": Expect("Automatic reply: [CS-2026-000042] Link down", ANNA, AutoKind.AUTO_REPLY),
    "list_digest": Expect(
        "noc-list Digest, Vol 12, Issue 3",
        "noc-list-request@lists.example",
        AutoKind.BULK,
        text=("Today's Topics", "Saw a flap on AS64500."),
    ),
    "euro_latin9": Expect("Fattura € 120", ANNA, text=("Importo: 120 €, perché è dovuto.",)),
    "cp1252_as_latin1": Expect(
        "Smart quotes", ANNA, text=("It\u2019s \u201cdown\u201d \u2013 again \u20ac5.",)
    ),
    "broken_base64": Expect("Broken padding", ANNA, text=("Ciao, la linea è giù!",)),
    "qp_soft_breaks": Expect(
        "QP", ANNA, text=("wrapped with a soft break; café.",), absent=("=\n", "=C3")
    ),
    "missing_closing_boundary": Expect(
        "No closing boundary",
        ANNA,
        text=("First part text.",),
        files=("ports.csv",),
        defects=("CloseBoundaryNotFound",),
    ),
    "missing_boundary_param": Expect(
        "No boundary parameter",
        ANNA,
        text=("Hidden text.",),
        absent=("--foo", "Content-Type"),
        defects=("guessed 'foo'",),
    ),
    "eight_bit_headers": Expect(
        "Störung \u2013 Leitung unterbrochen",
        "juergen@customer.example",
        text=("Leitung tot.",),
        extra={"sender_name": "Jürgen Müller"},
    ),
    "latin1_8bit_header": Expect("caffè rotto", "a@customer.example"),
    "split_encoded_word": Expect("più ☎ ok", ANNA),
    "huge_header": Expect(
        "Huge header", ANNA, text=("Body after a huge header.",), defects=("cut",)
    ),
    "many_received": Expect(
        "Many hops",
        ANNA,
        text=("scenic route",),
        defects=("700 header fields past the first 300 dropped",),
        extra={"date": datetime(2026, 12, 7, 8, 15, tzinfo=UTC)},
    ),
    "rfc2231_continuation": Expect(
        "Report attached", ANNA, files=("Rapporto disservizio € dicembre.pdf",)
    ),
    "zero_byte_attachment": Expect(
        "Empty file", ANNA, text=("Empty log attached.",), files=("empty.log",)
    ),
    "forwarded_rfc822": Expect(
        "Fwd: alarm from our monitoring",
        ANNA,
        text=("See the alarm below.", "Subject: ALARM ntu-17 down", "unreachable since 07:58"),
        files=("graph.png",),
        extra={"reply_has": "ntu-17 unreachable since 07:58."},
    ),
    "calendar_invite": Expect(
        "Invitation: maintenance review @ Wed 9 Dec 2026",
        "carla@customer.example",
        text=("Maintenance review, Wednesday.",),
        absent=("BEGIN:VCALENDAR",),
        files=("attachment-1.ics", "invite.ics"),
    ),
    "smime_signed": Expect("Signed request", ANNA, text=("Please raise the bandwidth.",)),
    "format_flowed": Expect(
        "Flowed",
        ANNA,
        text=("This line was wrapped by the client at 72 columns.",),
        reply="This line was wrapped by the client at 72 columns.",
    ),
    "no_from": Expect("Who am I", "", text=("Anonymous body.",), defects=("no usable From",)),
    "no_message_id": Expect("No id", ANNA, message_id=None, defects=("no Message-ID",)),
    "garbage": "no mail header fields",
    "empty": "empty input",
    "only_headers": Expect("Just headers", ANNA, message_id=None, extra={"text": ""}),
    "evil_pdf_name": Expect(
        "Evil name",
        ANNA,
        text=("See file.",),
        files=("evil.pdf", "_con.txt", "attachment-3.bin", "x" * 146 + ".png", "ab.zip"),
        defects=("'../../evil.pdf' stored as 'evil.pdf'",),
    ),
    "unknown_charset": Expect(
        "café",
        ANNA,
        text=("café à la carte",),
        defects=("'x-klingon' did not fit; decoded as cp1252",),
    ),
    "base64_charset_label": Expect("codec trick", ANNA, text=("plain words",)),
    "deep_nesting": Expect("Deep", ANNA, absent=("bottom",), defects=("nesting deeper than 10",)),
    "malformed_date_and_ids": Expect(
        "Folded subject line",
        "weird@customer.example",
        message_id="<spaced@id>",
        defects=("unparseable Date",),
        extra={
            "date": None,
            "recipients": (),
            "in_reply_to": ("<one@isp.example>",),
            "references": ("<a@x>", "<b@x>", "<c@x>"),
        },
    ),
    "own_loop": Expect("[CS-2026-000042] Your case", "support@isp.example", AutoKind.LOOP),
    "xloop_marker": Expect("forwarded back", ANNA, AutoKind.LOOP),
    "html_with_entities": Expect(
        "Entities",
        ANNA,
        text=("Stato linea", "- Tratta A & B\n- Costo € 5", "porta 1", "  x   y\n  z", "“amici”"),
        absent=("javascript", "frame text", "evil.example", "&amp;"),
    ),
    "nul_and_control": Expect("nul in subject", ANNA, text=("beforeafter",), absent=("\x00",)),
    "lf_only_mixed_tnef": Expect(
        "winmail", ANNA, text=("Outlook rich text.",), files=("winmail.dat",)
    ),
    "outlook_encoded_filename": Expect(
        "Verbale riunione", ANNA, text=("In allegato.",), files=("Verbale à lunedì.docx",)
    ),
}


def test_corpus_is_large_and_fully_specified() -> None:
    assert len(CORPUS) >= 35
    assert set(EXPECTED) == set(CORPUS)


def _check(parsed: ParsedMail, expect: Expect) -> None:
    assert parsed.subject == expect.subject
    assert parsed.sender == expect.sender
    assert parsed.auto is expect.auto
    for snippet in expect.text:
        assert snippet in parsed.text, (snippet, parsed.text)
    for snippet in expect.absent:
        assert snippet not in parsed.text, (snippet, parsed.text)
    if expect.reply is not None:
        assert parsed.reply_text == expect.reply
    elif "reply_has" not in expect.extra:
        assert parsed.reply_text == parsed.text
    assert tuple(item.filename for item in parsed.attachments) == expect.files
    if expect.message_id != "<>":
        assert parsed.message_id == expect.message_id
    for snippet in expect.defects:
        assert any(snippet in defect for defect in parsed.defects), (snippet, parsed.defects)
    assert (parsed.bounce is not None) == (parsed.auto is AutoKind.BOUNCE)
    if expect.bounce_to is None:
        assert parsed.bounce is None
    else:
        assert parsed.bounce is not None
        assert parsed.bounce.recipients == expect.bounce_to
        if expect.bounce_ids is not None:
            assert parsed.bounce.original_message_ids == expect.bounce_ids
    for key, value in expect.extra.items():
        if key == "bounce_status":
            assert parsed.bounce is not None and parsed.bounce.status == value
        elif key == "reply_has":
            assert isinstance(value, str) and value in parsed.reply_text
        else:
            assert getattr(parsed, key) == value, key


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_message(name: str) -> None:
    raw = CORPUS[name]
    expect = EXPECTED[name]
    if isinstance(expect, str):
        with pytest.raises(MailParseError) as caught:
            parse_mail(raw, own_addresses=OWN, loop_marker=MARKER)
        assert expect in caught.value.reason
        return
    parsed = parse_mail(raw, own_addresses=OWN, loop_marker=MARKER)
    _check(parsed, expect)
    assert parsed.size == len(raw)
    assert all(item.filename and "/" not in item.filename for item in parsed.attachments)
    assert "\x00" not in parsed.text and "\x00" not in parsed.subject


def _parse_or_refuse(raw: bytes) -> None:
    try:
        parsed = parse_mail(raw, own_addresses=OWN, loop_marker=MARKER)
    except MailParseError as error:
        reason = error.reason
        assert reason
        return
    assert isinstance(parsed.auto, AutoKind)
    assert (parsed.bounce is not None) == (parsed.auto is AutoKind.BOUNCE)
    assert parsed.size == len(raw)
    for item in parsed.attachments:
        assert item.filename and "/" not in item.filename and "\\" not in item.filename
        assert "\x00" not in item.filename
    if parsed.message_id is not None:
        assert parsed.message_id.startswith("<") and parsed.message_id.endswith(">")
    assert parsed.date is None or parsed.date.tzinfo is not None


_SAMPLES = sorted(CORPUS.values(), key=len)


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from([sample for sample in _SAMPLES if len(sample) < 20_000])))
    for _ in range(draw(st.integers(1, 6))):
        if not raw:
            break
        at = draw(st.integers(0, len(raw) - 1))
        action = draw(st.integers(0, 3))
        chunk = draw(
            st.sampled_from([b"\r\n", b"--", b"=?", b"?=", b";", b'"', b"=", b"\xff", b":", b" "])
            | st.binary(max_size=8)
        )
        if action == 0:
            raw[at : at + 1] = chunk
        elif action == 1:
            raw[at:at] = chunk
        elif action == 2:
            del raw[at : at + draw(st.integers(1, 64))]
        else:
            raw[at:] = raw[at:][: draw(st.integers(0, 200))]  # truncate
    return bytes(raw)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.binary(max_size=2_000) | _mutated())
def test_arbitrary_and_mutated_mail_parses_or_is_refused(raw: bytes) -> None:
    _parse_or_refuse(raw)
