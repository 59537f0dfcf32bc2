"""``caseapi.mailbox``: the ingest built from the ``mail`` settings section."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from caseapi.core.database import make_engine, make_sessionmaker
from caseapi.mail.intake import kept_bytes, synthetic_message_id
from caseapi.mail.parse import parse_mail
from caseapi.mailbox import MailSettings, build_mail_ingest
from nms.clock import FakeClock
from tests.caseapi.conftest import START


def test_built_from_the_mail_settings(tmp_path: Path) -> None:
    mail = MailSettings.model_validate(
        {
            "address": "Support@ISP.example",
            "staff_addresses": ["Eve@ISP.example"],
            "staff_domains": ["noc.isp.example"],
            "max_size": "2KiB",
            "rate_limit": "3/minute",
        }
    )
    sessionmaker = make_sessionmaker(make_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"))
    ingest = build_mail_ingest(
        sessionmaker=sessionmaker,
        clock=FakeClock(start=START),
        mail=mail,
        also_ours=["noc@isp.example"],
    )
    settings = ingest.settings
    assert (settings.address, settings.max_size) == ("support@isp.example", 2048)
    assert (settings.rate_count, settings.rate_window) == (3, timedelta(minutes=1))
    assert settings.is_staff("EVE@isp.example") and settings.is_staff("bob@noc.isp.example")
    assert not settings.is_staff("ann@acme.example")
    # Mail from our sending address is a loop, never answered.
    ours = ingest.parse(b"From: noc@isp.example\r\nSubject: x\r\n\r\nhi\r\n")
    assert ours.auto.value == "loop"


def test_kept_bytes_keep_the_header_block_and_a_kilobyte() -> None:
    raw = b"From: a@b.example\r\nSubject: big\r\n\r\n" + b"x" * 5000
    kept = kept_bytes(raw, 4096)
    assert kept == raw[: raw.index(b"\r\n\r\n") + 4 + 1024]
    assert kept_bytes(raw, len(raw)) is raw


def test_synthetic_message_ids_ignore_trace_headers() -> None:
    body = b"From: a@b.example\r\nSubject: s\r\nDate: Sun, 01 Mar 2026 12:00:00 +0000\r\n\r\nhi\r\n"
    traced = b"Received: from mx by mx2\r\nReturn-Path: <a@b.example>\r\n" + body
    first = synthetic_message_id(parse_mail(body), body)
    assert first == synthetic_message_id(parse_mail(traced), traced)
    other = body.replace(b"hi", b"ho")
    assert synthetic_message_id(parse_mail(other), other) != first
