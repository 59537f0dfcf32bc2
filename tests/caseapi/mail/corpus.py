"""Awkward, real-world-shaped mail built in code, for the parser's corpus test.

Each entry is a name and the raw bytes; ``test_corpus.py`` holds the expected outcome of
each. The shapes follow what Outlook, Gmail, Apple Mail, Exchange, Postfix, qmail and list
servers really send, including their mistakes.
"""

from __future__ import annotations

import base64

CRLF = b"\r\n"


def build(*headers: str, body: bytes | str = b"", crlf: bool = True) -> bytes:
    """Return a message from header lines and a body (str bodies are UTF-8)."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    head = "\n".join(headers).encode("utf-8", "surrogateescape")
    raw = head + b"\n\n" + data
    return raw.replace(b"\r\n", b"\n").replace(b"\n", CRLF) if crlf else raw


def b64(data: bytes, width: int = 76) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return "\n".join(encoded[i : i + width] for i in range(0, len(encoded), width))


JPEG = b64(b"\xff\xd8\xff\xe0JPEGDATA")
PNG = b64(b"\x89PNG\r\n\x1a\nfake")
P7S = b64(b"0\x82\x05signature")

BASIC = (
    "From: Anna Bianchi <anna@customer.example>",
    "To: support@isp.example",
    "Date: Mon, 07 Dec 2026 09:15:00 +0100",
)

OUTLOOK_HTML_ONLY = build(
    *BASIC,
    "Subject: RE: [CS-2026-000042] Link down",
    "Message-ID: <AM0PR01MB1234.eurprd01.prod.outlook.com>",
    "In-Reply-To: <case-42-1@isp.example>",
    "References: <case-42-0@isp.example>\n <case-42-1@isp.example>",
    "X-MS-Has-Attach:",
    "MIME-Version: 1.0",
    'Content-Type: text/html; charset="us-ascii"',
    "Content-Transfer-Encoding: quoted-printable",
    body=(
        '<html xmlns:o=3D"urn:schemas-microsoft-com:office:office"><head>'
        '<meta http-equiv=3D"Content-Type" content=3D"text/html">'
        "<style><!-- p.MsoNormal {margin:0cm;} --></style>"
        "<script>alert('x')</script></head><body lang=3D\"IT\">"
        '<div class=3D"WordSection1"><p class=3D"MsoNormal">The link is still down=\n'
        " since 08:00.<o:p></o:p></p>"
        '<p class=3D"MsoNormal">See <a href=3D"https://status.customer.example/x">'
        "our status page</a>.</p>"
        '<img src=3D"https://tracker.example/pixel.gif" alt=3D"">'
        '<div style=3D"border:none;border-top:solid #E1E1E1 1.0pt">'
        '<p class=3D"MsoNormal"><b>From:</b> Support &lt;support@isp.example&gt;<br>'
        "<b>Sent:</b> Monday, December 7, 2026 8:30 AM<br><b>To:</b> Anna<br>"
        "<b>Subject:</b> [CS-2026-000042] Link down</p></div>"
        "<p>We opened case CS-2026-000042.</p></div></body></html>"
    ),
)

APPLE_MAIL_NESTED = build(
    "From: Luca Verdi <luca@customer.example>",
    "To: support@isp.example",
    "Subject: Router photos",
    "Date: Tue, 8 Dec 2026 14:02:11 +0100",
    "Message-Id: <E3A1F0C2-1111-2222-3333-444455556666@customer.example>",
    "Mime-Version: 1.0 (Mac OS X Mail 16.0)",
    'Content-Type: multipart/alternative; boundary="Apple-Mail=_A"',
    body=(
        "\n--Apple-Mail=_A\n"
        "Content-Transfer-Encoding: 7bit\n"
        "Content-Type: text/plain; charset=us-ascii\n\n"
        "Photos of the router attached.\n\n"
        "--Apple-Mail=_A\n"
        'Content-Type: multipart/related; type="text/html"; boundary="Apple-Mail=_B"\n\n'
        "--Apple-Mail=_B\n"
        "Content-Type: text/html; charset=us-ascii\n\n"
        '<html><body>Photos of the router attached.<img src="cid:img1"></body></html>\n'
        "--Apple-Mail=_B\n"
        "Content-Disposition: inline; filename=IMG_0001.jpeg\n"
        "Content-Type: image/jpeg; name=IMG_0001.jpeg\n"
        "Content-Id: <img1>\n"
        "Content-Transfer-Encoding: base64\n\n"
        f"{JPEG}\n"
        "--Apple-Mail=_B--\n\n"
        "--Apple-Mail=_A--\n"
    ),
)

GMAIL_REPLY_EN = build(
    *BASIC,
    "Subject: Re: [CS-2026-000007] Packet loss",
    "Message-ID: <CAF=abc123@mail.gmail.com>",
    "In-Reply-To: <out-7@isp.example>",
    'Content-Type: multipart/alternative; boundary="000000000000abc"',
    body=(
        "--000000000000abc\n"
        'Content-Type: text/plain; charset="UTF-8"\n\n'
        "It happened again at 10:40, about 30% loss.\n\n"
        "On Mon, Dec 7, 2026 at 9:00 AM ISP Support <support@isp.example>\n"
        "wrote:\n\n"
        "> We are looking into it.\n>\n> Regards\n\n"
        "--000000000000abc\n"
        'Content-Type: text/html; charset="UTF-8"\n\n'
        '<div dir=3D"ltr">It happened again</div>\n'
        "--000000000000abc--\n"
    ),
)

GMAIL_REPLY_IT = build(
    *BASIC,
    "Subject: Re: [CS-2026-000008] Rallentamenti",
    "Message-ID: <CAF=it456@mail.gmail.com>",
    'Content-Type: text/plain; charset="UTF-8"',
    "Content-Transfer-Encoding: quoted-printable",
    body=(
        "Il problema =C3=A8 ancora presente, grazie.\n\n"
        "Il giorno lun 7 dic 2026 alle ore 09:00 Assistenza <support@isp.example> ha =\n"
        "scritto:\n\n"
        "> Stiamo verificando.\n"
    ),
)

EXCHANGE_NDR = build(
    "From: Microsoft Outlook <postmaster@customer.example>",
    "To: support@isp.example",
    "Subject: Undeliverable: [CS-2026-000042] Outage notice",
    "Date: Mon, 7 Dec 2026 09:16:00 +0000",
    "Message-ID: <ndr-1@customer.example>",
    "Auto-Submitted: auto-replied",
    "Content-Language: en-US",
    'Content-Type: multipart/report; report-type=delivery-status; boundary="NDR"',
    body=(
        "--NDR\n"
        'Content-Type: multipart/alternative; boundary="NDRALT"\n\n'
        "--NDRALT\n"
        "Content-Type: text/plain; charset=us-ascii\n\n"
        "Your message to noc@customer.example couldn't be delivered.\n"
        "noc wasn't found at customer.example.\n\n"
        "--NDRALT\n"
        "Content-Type: text/html; charset=us-ascii\n\n"
        "<p>Your message couldn't be delivered.</p>\n"
        "--NDRALT--\n\n"
        "--NDR\n"
        "Content-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.outlook.com\n"
        "Received-From-MTA: dns;mail.isp.example\n"
        "Arrival-Date: Mon, 7 Dec 2026 09:15:58 +0000\n\n"
        "Final-Recipient: rfc822;noc@customer.example\n"
        "Action: failed\n"
        "Status: 5.1.10\n"
        "Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound\n\n"
        "--NDR\n"
        "Content-Type: text/rfc822-headers\n\n"
        "From: ISP Support <support@isp.example>\n"
        "To: noc@customer.example\n"
        "Subject: [CS-2026-000042] Outage notice\n"
        "Message-ID: <notice-42-1@isp.example>\n\n"
        "--NDR--\n"
    ),
)

POSTFIX_DSN = build(
    "From: MAILER-DAEMON@mx.isp.example (Mail Delivery System)",
    "To: support@isp.example",
    "Subject: Undelivered Mail Returned to Sender",
    "Date: Mon,  7 Dec 2026 09:20:01 +0100 (CET)",
    "Message-Id: <20261207082001.ABC@mx.isp.example>",
    "Auto-Submitted: auto-replied",
    "MIME-Version: 1.0",
    "Content-Type: multipart/report; report-type=delivery-status;\n"
    '\tboundary="ABC.1733559601/mx.isp.example"',
    body=(
        "This is a MIME-encapsulated message.\n\n"
        "--ABC.1733559601/mx.isp.example\n"
        "Content-Description: Notification\n"
        "Content-Type: text/plain; charset=us-ascii\n\n"
        "This is the mail system at host mx.isp.example.\n\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients.\n\n"
        "<ops@customer.example>: host mx.customer.example said: 550 5.1.1 no such user\n\n"
        "--ABC.1733559601/mx.isp.example\n"
        "Content-Description: Delivery report\n"
        "Content-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.isp.example\n"
        "X-Postfix-Queue-ID: ABC\n\n"
        "Final-Recipient: rfc822; OPS@customer.example\n"
        "Original-Recipient: rfc822;ops@customer.example\n"
        "Action: failed\n"
        "Status: 5.1.1\n"
        "Remote-MTA: dns; mx.customer.example\n\n"
        "Final-Recipient: rfc822; cc@customer.example\n"
        "Action: delayed\n"
        "Status: 4.4.1\n\n"
        "--ABC.1733559601/mx.isp.example\n"
        "Content-Description: Undelivered Message\n"
        "Content-Type: message/rfc822\n\n"
        "From: ISP Support <support@isp.example>\n"
        "To: ops@customer.example\n"
        "Subject: [CS-2026-000043] Maintenance\n"
        "Message-ID: <notice-43-1@isp.example>\n"
        "Content-Type: multipart/mixed; boundary=inner\n\n"
        "--inner\nContent-Type: text/plain\n\nPlanned works.\n"
        "--inner\nContent-Type: application/pdf; name=rfo.pdf\n"
        "Content-Disposition: attachment; filename=rfo.pdf\n\n%PDF-1.4\n"
        "--inner--\n\n"
        "--ABC.1733559601/mx.isp.example--\n"
    ),
)

QMAIL_BOUNCE = build(
    "From: MAILER-DAEMON@mail.customer.example",
    "To: support@isp.example",
    "Subject: failure notice",
    "Date: 7 Dec 2026 08:21:00 -0000",
    body=(
        "Hi. This is the qmail-send program at mail.customer.example.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n\n"
        "<Gone@customer.example>:\n"
        "Sorry, no mailbox here by that name. (#5.1.1)\n\n"
        "--- Below this line is a copy of the message.\n\n"
        "From: support@isp.example\n"
        "Message-ID: <notice-44-1@isp.example>\n"
        "Subject: [CS-2026-000044] Outage\n"
    ),
)

DELAY_DSN = build(
    "From: Mail Delivery System <MAILER-DAEMON@mx.isp.example>",
    "To: support@isp.example",
    "Subject: Delayed Mail (still being retried)",
    "Message-ID: <delay-1@mx.isp.example>",
    'Content-Type: multipart/report; report-type=delivery-status; boundary="D"',
    body=(
        "--D\nContent-Type: text/plain\n\nStill trying.\n"
        "--D\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.isp.example\n\n"
        "Final-Recipient: rfc822; slow@customer.example\nAction: delayed\nStatus: 4.4.7\n\n"
        "--D--\n"
    ),
)

VACATION = build(
    "From: Paolo Neri <paolo@customer.example>",
    "To: support@isp.example",
    "Subject: Fuori sede / Out of office: [CS-2026-000042] Link down",
    "Date: Mon, 07 Dec 2026 09:16:00 +0100",
    "Message-ID: <vac-1@customer.example>",
    "Auto-Submitted: auto-replied (vacation)",
    "Precedence: bulk",
    "Content-Type: text/plain; charset=utf-8",
    body="Sono fuori sede fino al 14 dicembre.\n",
)

OUTLOOK_OOF = build(
    *BASIC,
    "Subject: Automatic reply: [CS-2026-000042] Link down",
    "Message-ID: <oof-1@customer.example>",
    "X-Auto-Response-Suppress: All",
    "Content-Type: text/plain; charset=utf-8",
    body="I am out of the office.\n",
)

LIST_DIGEST = build(
    "From: noc-list-request@lists.example",
    "To: noc-list@lists.example",
    "Subject: noc-list Digest, Vol 12, Issue 3",
    "Date: Mon, 07 Dec 2026 12:00:00 +0000",
    "Message-ID: <mailman.1.1733572800.12.noc-list@lists.example>",
    "List-Id: NOC operators <noc-list.lists.example>",
    "List-Unsubscribe: <mailto:noc-list-request@lists.example?subject=unsubscribe>",
    "Precedence: list",
    'Content-Type: multipart/mixed; boundary="===============digest=="',
    body=(
        "--===============digest==\nContent-Type: text/plain; charset=us-ascii\n\n"
        "Today's Topics:\n\n   1. BGP flap (Someone)\n\n"
        '--===============digest==\nContent-Type: multipart/digest; boundary="d2"\n\n'
        "--d2\n\nFrom: someone@lists.example\nSubject: BGP flap\n"
        "Message-ID: <flap@lists.example>\n\nSaw a flap on AS64500.\n"
        "--d2--\n\n--===============digest==--\n"
    ),
)

EURO_LATIN9 = build(
    *BASIC,
    "Subject: =?ISO-8859-15?Q?Fattura_=A4_120?=",
    "Message-ID: <euro@customer.example>",
    "Content-Type: text/plain; charset=ISO-8859-15",
    "Content-Transfer-Encoding: 8bit",
    body="Importo: 120 \u20ac, perch\u00e9 \u00e8 dovuto.\n".encode("iso-8859-15"),
)

CP1252_AS_LATIN1 = build(
    *BASIC,
    "Subject: Smart quotes",
    "Message-ID: <smart@customer.example>",
    "Content-Type: text/plain; charset=iso-8859-1",
    "Content-Transfer-Encoding: 8bit",
    body="It\u2019s \u201cdown\u201d \u2013 again \u20ac5.\n".encode("cp1252"),
)

BROKEN_BASE64 = build(
    *BASIC,
    "Subject: Broken padding",
    "Message-ID: <b64@customer.example>",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: base64",
    body=base64.b64encode("Ciao, la linea è giù!".encode()).rstrip(b"=") + b"\n",
)

QP_SOFT_BREAKS = build(
    *BASIC,
    "Subject: QP",
    "Message-ID: <qp@customer.example>",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: quoted-printable",
    body="This is a very long line that the client wrapped with a soft=\n break; caf=C3=A9=\n.\n",
)

MISSING_CLOSING_BOUNDARY = build(
    *BASIC,
    "Subject: No closing boundary",
    "Message-ID: <noclose@customer.example>",
    'Content-Type: multipart/mixed; boundary="XYZ"',
    body=(
        "--XYZ\nContent-Type: text/plain\n\nFirst part text.\n"
        '--XYZ\nContent-Type: text/csv; name="ports.csv"\n\nport,state\n1,down\n'
    ),
)

MISSING_BOUNDARY_PARAM = build(
    *BASIC,
    "Subject: No boundary parameter",
    "Message-ID: <nobound@customer.example>",
    "Content-Type: multipart/mixed",
    body="--foo\nContent-Type: text/plain\n\nHidden text.\n--foo--\n",
)

EIGHT_BIT_HEADERS = build(
    "From: Jürgen Müller <juergen@customer.example>",
    "To: support@isp.example",
    "Subject: Störung \u2013 Leitung unterbrochen",
    "Message-ID: <8bit@customer.example>",
    "Content-Type: text/plain; charset=utf-8",
    body="Leitung tot.\n",
)

LATIN1_8BIT_HEADER = build(
    "From: support-test <a@customer.example>",
    "Subject: caff\udce8 rotto",
    "Message-ID: <l1hdr@customer.example>",
    body="body\n",
)

SPLIT_ENCODED_WORD = build(
    *BASIC,
    # "più ☎" split so that the UTF-8 bytes of each character straddle two encoded-words.
    "Subject: =?UTF-8?B?cGnD?= =?UTF-8?B?uSDi?=\n =?UTF-8?B?mI4=?= ok",
    "Message-ID: <split@customer.example>",
    body="x\n",
)

HUGE_HEADER = build(
    *BASIC,
    "Subject: Huge header",
    "Message-ID: <huge@customer.example>",
    "X-Garbage: " + "A" * 100_000,
    body="Body after a huge header.\n",
)

MANY_RECEIVED = build(
    *[f"Received: from relay{i}.example by relay{i + 1}.example; 7 Dec 2026" for i in range(1000)],
    *BASIC,
    "Subject: Many hops",
    "Message-ID: <hops@customer.example>",
    body="Took the scenic route.\n",
)

RFC2231_CONTINUATION = build(
    *BASIC,
    "Subject: Report attached",
    "Message-ID: <rfc2231@customer.example>",
    'Content-Type: multipart/mixed; boundary="r"',
    body=(
        "--r\nContent-Type: text/plain\n\nSee attached.\n"
        "--r\nContent-Type: application/pdf\n"
        "Content-Disposition: attachment;\n"
        " filename*0*=UTF-8''Rapporto%20disservizio%20;\n"
        " filename*1*=%E2%82%AC%20dicembre.pdf\n"
        "Content-Transfer-Encoding: base64\n\n"
        f"{b64(b'%PDF-1.7 test')}\n--r--\n"
    ),
)

ZERO_BYTE_ATTACHMENT = build(
    *BASIC,
    "Subject: Empty file",
    "Message-ID: <zero@customer.example>",
    'Content-Type: multipart/mixed; boundary="z"',
    body=(
        "--z\nContent-Type: text/plain\n\nEmpty log attached.\n"
        "--z\nContent-Type: text/plain; name=empty.log\n"
        "Content-Disposition: attachment; filename=empty.log\n"
        "Content-Transfer-Encoding: base64\n\n\n--z--\n"
    ),
)

FORWARDED_RFC822 = build(
    *BASIC,
    "Subject: Fwd: alarm from our monitoring",
    "Message-ID: <fwd@customer.example>",
    'Content-Type: multipart/mixed; boundary="f"',
    body=(
        "--f\nContent-Type: text/plain\n\nSee the alarm below.\n"
        "--f\nContent-Type: message/rfc822\nContent-Disposition: inline\n\n"
        "From: monitor@customer.example\nSubject: ALARM ntu-17 down\n"
        "Date: Mon, 7 Dec 2026 08:00:00 +0100\nMessage-ID: <alarm@customer.example>\n"
        'Content-Type: multipart/mixed; boundary="g"\n\n'
        "--g\nContent-Type: text/plain\n\nntu-17 unreachable since 07:58.\n"
        "--g\nContent-Type: image/png\nContent-Disposition: attachment; filename=graph.png\n"
        f"Content-Transfer-Encoding: base64\n\n{PNG}\n"
        "--g--\n"
        "--f--\n"
    ),
)

CALENDAR_INVITE = build(
    "From: Carla <carla@customer.example>",
    "To: support@isp.example",
    "Subject: Invitation: maintenance review @ Wed 9 Dec 2026",
    "Message-ID: <invite@customer.example>",
    'Content-Type: multipart/mixed; boundary="m"',
    body=(
        '--m\nContent-Type: multipart/alternative; boundary="a"\n\n'
        "--a\nContent-Type: text/plain; charset=UTF-8\n\nMaintenance review, Wednesday.\n"
        "--a\nContent-Type: text/html; charset=UTF-8\n\n<p>Maintenance review</p>\n"
        "--a\nContent-Type: text/calendar; charset=UTF-8; method=REQUEST\n\n"
        "BEGIN:VCALENDAR\nMETHOD:REQUEST\nEND:VCALENDAR\n"
        "--a--\n"
        '--m\nContent-Type: application/ics; name="invite.ics"\n'
        'Content-Disposition: attachment; filename="invite.ics"\n\n'
        "BEGIN:VCALENDAR\nEND:VCALENDAR\n"
        "--m--\n"
    ),
)

SMIME_SIGNED = build(
    *BASIC,
    "Subject: Signed request",
    "Message-ID: <signed@customer.example>",
    'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256;'
    ' boundary="s"',
    body=(
        "This is an S/MIME signed message\n\n"
        "--s\nContent-Type: text/plain; charset=utf-8\n\nPlease raise the bandwidth.\n"
        "--s\nContent-Type: application/pkcs7-signature; name=smime.p7s\n"
        "Content-Disposition: attachment; filename=smime.p7s\n"
        f"Content-Transfer-Encoding: base64\n\n{P7S}\n"
        "--s--\n"
    ),
)

FORMAT_FLOWED = build(
    *BASIC,
    "Subject: Flowed",
    "Message-ID: <flowed@customer.example>",
    "Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes",
    body="This line was wrapped by the cli \nent at 72 columns.\n\n-- \nAnna\n",
)

NO_FROM = build(
    "To: support@isp.example",
    "Subject: Who am I",
    "Message-ID: <nofrom@customer.example>",
    body="Anonymous body.\n",
)

NO_MESSAGE_ID = build(*BASIC, "Subject: No id", body="No id here.\n")

GARBAGE = bytes(range(256)) * 4

EMPTY = b""

ONLY_HEADERS = b"From: anna@customer.example\r\nSubject: Just headers\r\n"

EVIL_PDF_NAME = build(
    *BASIC,
    "Subject: Evil name",
    "Message-ID: <evil@customer.example>",
    'Content-Type: multipart/mixed; boundary="e"',
    body=(
        "--e\nContent-Type: text/plain\n\nSee file.\n"
        '--e\nContent-Type: application/pdf; name="../../evil.pdf"\n'
        'Content-Disposition: attachment; filename="../../evil.pdf"\n\n%PDF\n'
        '--e\nContent-Type: text/plain\nContent-Disposition: attachment; filename="con.txt"\n\n'
        "device\n"
        "--e\nContent-Type: application/octet-stream\n"
        'Content-Disposition: attachment; filename=""\n\nnoname\n'
        '--e\nContent-Type: image/png\nContent-Disposition: attachment; filename="'
        + "x"
        * 300
        + '.png"\n\npng\n'
        "--e\nContent-Type: application/zip\n"
        'Content-Disposition: attachment; filename="a\x00b.zip"\n\nzip\n--e--\n'
    ),
)

UNKNOWN_CHARSET = build(
    *BASIC,
    "Subject: =?x-unknown?Q?caf=E9?=",
    "Message-ID: <unknown-cs@customer.example>",
    "Content-Type: text/plain; charset=x-klingon",
    body="caf\u00e9 \u00e0 la carte\n".encode("cp1252"),
)

BASE64_CHARSET_LABEL = build(
    *BASIC,
    "Subject: codec trick",
    "Message-ID: <codec@customer.example>",
    "Content-Type: text/plain; charset=base64",
    body=b"plain words\n",
)

DEPTH = range(30)
DEEP_NESTING = build(
    *BASIC,
    "Subject: Deep",
    "Message-ID: <deep@customer.example>",
    'Content-Type: multipart/mixed; boundary="n0"',
    body="".join(f'--n{i}\nContent-Type: multipart/mixed; boundary="n{i + 1}"\n\n' for i in DEPTH)
    + "--n30\nContent-Type: text/plain\n\nbottom\n--n30--\n"
    + "".join(f"--n{i}--\n" for i in reversed(DEPTH)),
)

MALFORMED_DATE_AND_IDS = build(
    "From: <weird@customer.example>",
    "To: ,,, undisclosed-recipients:;",
    "Subject: \t Folded\n   subject   line ",
    "Date: the day after tomorrow",
    "Message-ID: (comment) <  spaced @ id  > (trailing)",
    "In-Reply-To: <one@isp.example> (Anna's message of Monday)",
    "References: <a@x> <b@x>\n\t<c@x> garbage <a@x>",
    body="Body.\n",
)

OWN_LOOP = build(
    "From: ISP Support <Support@ISP.example>",
    "To: support@isp.example",
    "Subject: [CS-2026-000042] Your case",
    "Message-ID: <loop@isp.example>",
    body="We answered.\n",
)

XLOOP_MARKER = build(
    *BASIC,
    "Subject: forwarded back",
    "Message-ID: <xloop@customer.example>",
    "X-Loop: support@isp.example",
    body="Our own mail, forwarded back by a rule.\n",
)

HTML_WITH_ENTITIES = build(
    *BASIC,
    "Subject: Entities",
    "Message-ID: <ent@customer.example>",
    "Content-Type: text/html; charset=windows-1252",
    body=(
        b"<body><h1>Stato&nbsp;linea</h1><ul><li>Tratta A &amp; B</li><li>Costo &euro; 5"
        b"</li></ul><table><tr><td>porta</td><td>1</td></tr></table>"
        b"<a href='javascript:alert(1)'>click</a> <pre>  x   y\n  z</pre>"
        b"<iframe src='https://evil.example'>frame text</iframe><p>Ciao \x93amici\x94</p>"
        b"</body>"
    ),
)

NUL_AND_CONTROL = build(
    *BASIC,
    "Subject: nul\x01 in subject",
    "Message-ID: <nul@customer.example>",
    body=b"before\x00after\x1b[31m red\n",
)

LF_ONLY_MIXED_TNEF = build(
    *BASIC,
    "Subject: winmail",
    "Message-ID: <tnef@customer.example>",
    'Content-Type: multipart/mixed; boundary="t"',
    body=(
        "--t\nContent-Type: text/plain\n\nOutlook rich text.\n"
        '--t\nContent-Type: application/ms-tnef; name="winmail.dat"\n'
        "Content-Transfer-Encoding: base64\n\n" + b64(b"\x78\x9f\x3e\x22") + "\n--t--\n"
    ),
    crlf=False,
)

OUTLOOK_ENCODED_FILENAME = build(
    *BASIC,
    "Subject: =?iso-8859-1?Q?Verbale_riunione?=",
    "Message-ID: <encname@customer.example>",
    'Content-Type: multipart/mixed; boundary="o"',
    body=(
        "--o\nContent-Type: text/plain; charset=iso-8859-1\n\nIn allegato.\n"
        "--o\nContent-Type: application/vnd.openxmlformats-officedocument."
        "wordprocessingml.document;"
        ' name="=?iso-8859-1?Q?Verbale_=E0_luned=EC.docx?="\n'
        'Content-Disposition: attachment; filename="=?iso-8859-1?Q?Verbale_=E0_luned=EC.docx?="\n'
        "Content-Transfer-Encoding: base64\n\n" + b64(b"PK\x03\x04docx") + "\n--o--\n"
    ),
)

GMAIL_HTML_ONLY_REPLY = build(
    *BASIC,
    "Subject: Re: [CS-2026-000009] Jitter",
    "Message-ID: <CAF=html@mail.gmail.com>",
    "References: <out-9@isp.example>",
    'Content-Type: text/html; charset="UTF-8"',
    "Content-Transfer-Encoding: base64",
    body=b64(
        b'<div dir="ltr">Jitter is back to <b>normal</b> &mdash; thanks.</div><br>'
        b'<div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, Dec 7, 2026 at '
        b'9:00\xe2\x80\xafAM ISP Support &lt;<a href="mailto:support@isp.example">'
        b'support@isp.example</a>&gt; wrote:<br></div><blockquote class="gmail_quote">'
        b"We changed the queue profile.</blockquote></div>"
    ),
)

CORPUS: dict[str, bytes] = {
    name.lower(): value
    for name, value in list(globals().items())
    if name.isupper() and isinstance(value, bytes) and name != "CRLF"
}
