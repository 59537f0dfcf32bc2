"""Contacts and localized template files: the right people, in their language."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from caseapi.customers.contacts import contact_by_email, contacts_of
from caseapi.incidents import IncidentService
from caseapi.inventory import ContactRecord, CustomerRecord, sync_inventory
from caseapi.mail.config import MailSettings
from caseapi.notifications.dispatcher import NotificationDispatcher
from caseapi.notifications.enums import MAINTENANCE_KINDS, NO_CASE_KINDS, NotificationKind
from caseapi.notifications.models import NotificationDelivery
from caseapi.notifications.outbox import enqueue
from caseapi.notifications.render import render_email
from caseapi.notifications.templating import SHIPPED_DIR, load_templates
from nms.app.settings import load_settings
from nms.clock import FakeClock
from nms.errors import ConfigError
from nms.inventory.loader import parse_inventory
from nms.inventory.sync import sync_inventory as sync_nms_inventory
from tests.caseapi.conftest import START, Database
from tests.caseapi.notification_fixtures import (
    SmtpSink,
    smtp_sink_fixture,  # noqa: F401
)
from tests.caseapi.test_mail_threading import plain_text
from tests.caseapi.test_notifications import open_case, settings_for
from tests.caseapi.test_notifications_render import envelope

K = NotificationKind
#: Words of each Italian template's subject (its title) that no English one has.
ITALIAN_SUBJECTS = {
    K.CASE_OPENED: "Caso aperto - stato: risolto",
    K.PUBLIC_UPDATE: "Aggiornamento - stato: risolto",
    K.CASE_SOLVED: "Servizio ripristinato",
    K.RFO_PUBLISHED: "Rapporto sul disservizio pubblicato",
    K.CASE_CLOSED: "Caso chiuso",
    K.WAITING_CUSTOMER_REMINDER: "Attendiamo una vostra risposta",
    K.ETR_UPDATED: "Tempo stimato di ripristino",
    K.CASE_ACKNOWLEDGED: "Abbiamo ricevuto la vostra richiesta",
    K.FOLLOW_UP_OPENED: "Nuovo caso per la vostra risposta a CS-2026-000041",
    K.REQUEST_REFUSED: "Re: Line down again - nessun caso aperto",
    K.MAINTENANCE_ANNOUNCED: "[Manutenzione MW-7] Manutenzione annunciata: PoP router upgrade",
    K.MAINTENANCE_REMINDER: "[Manutenzione MW-7] Promemoria manutenzione",
    K.MAINTENANCE_STARTED: "[Manutenzione MW-7] Manutenzione iniziata",
    K.MAINTENANCE_COMPLETED: "[Manutenzione MW-7] Manutenzione completata",
    K.MAINTENANCE_CANCELLED: "[Manutenzione MW-7] Manutenzione annullata",
    K.STAFF_ALERT: "conferma la presa in carico",
}


def test_every_kind_has_an_italian_and_an_english_template() -> None:
    assert set(ITALIAN_SUBJECTS) == set(NotificationKind)
    for kind in NotificationKind:
        italian = render_email(envelope(kind), language="it", recipient_name="Mario Rossi")
        english = render_email(envelope(kind), language="en", recipient_name="Jane Doe")
        assert ITALIAN_SUBJECTS[kind] in italian.subject, kind
        assert ITALIAN_SUBJECTS[kind] not in english.subject, kind
        assert italian.text.startswith("Gentile Mario Rossi,\n"), kind
        assert english.text.startswith("Dear Jane Doe,\n"), kind
        assert "(non ancora noto)" not in italian.text, kind
        assert "Prossimi passi:" in italian.text and "What is next:" in english.text
        if kind not in MAINTENANCE_KINDS | NO_CASE_KINDS:
            assert italian.subject.startswith("[CS-2026-000042] "), kind
            assert "[CS-2026-000042]" in italian.text  # how to reply, with the reference
    opened = render_email(envelope(K.CASE_OPENED), language="it").text
    # Times as an Italian reads them, in UTC without a zone (12:50 CET is 11:50 UTC).
    assert "iniziato il 1 marzo 2026, 11:50 (UTC)" in opened
    # In the reader's zone, with the offset, in either language.
    rome = render_email(envelope(K.CASE_OPENED), language="it", timezone="Europe/Rome").text
    assert "iniziato il 1 marzo 2026, 12:50 (UTC+01:00, Europe/Rome)" in rome
    assert "Inviato per l'evento del: " in rome and "(UTC+01:00, Europe/Rome)" in rome
    assert "(UTC)" not in rome
    tokyo = render_email(envelope(K.CASE_OPENED), language="en", timezone="Asia/Tokyo").text
    assert "started at 1 March 2026, 20:50 (UTC+09:00, Asia/Tokyo)" in tokyo
    assert "Tempo stimato di ripristino: non definito" in opened
    # An unknown language falls back to English.
    assert render_email(envelope(K.CASE_OPENED), language="fr").text.startswith("Dear Cust One")


def _copy(root: Path, language: str, kind: str, text: str) -> None:
    (root / language).mkdir(parents=True, exist_ok=True)
    (root / language / f"{kind}.txt").write_text(text, encoding="utf-8")


def test_an_edited_copy_replaces_the_shipped_template(tmp_path: Path) -> None:
    _copy(
        tmp_path,
        "it",
        "case_opened",
        "Subject: [${ref}] Nuovo guasto\nCiao ${recipient_name}, caso ${ref} ($$0).\n",
    )
    templates = MailSettings(templates_dir=tmp_path).templates()
    mail = render_email(envelope(K.CASE_OPENED), language="it", templates=templates)
    assert mail.subject == "[CS-2026-000042] Nuovo guasto"
    assert mail.text == "Ciao Cust One, caso CS-2026-000042 ($0).\n"
    solved = render_email(envelope(K.CASE_SOLVED), language="it", templates=templates)
    assert solved.subject.startswith("[CS-2026-000042] Servizio ripristinato")  # shipped


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("it/case_opened.txt", "Subject: [${ref}] x\n${refx}\n", "unknown placeholder ${refx}"),
        ("it/case_opened.txt", "Subject: [${ref}] x\nCosto: 5$ {\n", "invalid '$' syntax"),
        ("it/case_opened.txt", "[${ref}] x\nbody\n", "the first line must be 'Subject: ...'"),
        ("it/case_opened.txt", "Subject: Caso aperto\nbody ${ref}\n", "must contain ${ref}"),
        ("it/case_opend.txt", "Subject: [${ref}] x\nbody\n", "unknown template"),
        ("de/case_opened.txt", "Subject: [${ref}] x\nbody\n", "'de' lack case_acknowledged"),
        ("it/case_opened.txt", b"Subject: [${ref}] \xff\n", "cannot read as UTF-8"),
    ],
)
def test_a_broken_template_is_refused_at_start_naming_the_file(
    tmp_path: Path, name: str, text: str | bytes, problem: str
) -> None:
    path = tmp_path / name
    path.parent.mkdir(parents=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(ValidationError) as caught:
        MailSettings(templates_dir=tmp_path)
    message = str(caught.value)
    assert problem in message
    if "lack" not in problem:
        assert str(path) in message


def test_the_shipped_templates_load_and_mail_settings_check_their_values() -> None:
    assert load_templates().languages == {"en", "it"}
    assert {p.name for p in SHIPPED_DIR.iterdir()} == {"en", "it"}
    settings = MailSettings(
        address=" Help@Example.NET ",
        staff_addresses=["Alice@Example.net"],
        staff_domains=["@Provider.example"],
        rate_limit="5 per minute",
        max_size="2MiB",
    )
    assert settings.address == "help@example.net" and settings.rate() == (5, "minute")
    assert settings.is_staff("alice@example.NET") and settings.is_staff("bob@provider.example")
    assert not settings.is_staff("bob@customer.example")
    assert settings.max_size == 2 * 1024 * 1024
    for bad, field in (
        ({"address": "support"}, "address"),
        ({"staff_addresses": ["a@b@c"]}, "staff_addresses"),
        ({"staff_domains": ["not a domain"]}, "staff_domains"),
        ({"rate_limit": "lots"}, "rate_limit"),
        ({"max_size": "1GiB1"}, "max_size"),
        ({"templates_dir": "/nonexistent/templates"}, "not a folder"),
    ):
        with pytest.raises(ValidationError, match=field):
            MailSettings.model_validate(bad)


def customer(*contacts: ContactRecord, **attributes: object) -> CustomerRecord:
    return CustomerRecord(
        id="cust-1", name="Cust One", attributes=dict(attributes), contacts=contacts
    )


async def test_contacts_sync_with_the_inventory(database: Database) -> None:
    mario = ContactRecord(email="Mario@Cust1.example", name="Mario Rossi", language="it")
    jane = ContactRecord(email="jane@cust1.example", name="Jane", roles=("billing",))
    await sync_inventory(
        database.sessionmaker, customers=[customer(mario, jane)], ntus=[], nodes=[]
    )
    async with database.sessionmaker() as session:
        found = await contact_by_email(session, " MARIO@cust1.EXAMPLE")
        assert found is not None
        assert (found.customer_id, found.email, found.language) == (
            "cust-1",
            "mario@cust1.example",
            "it",
        )
        assert found.roles == ("notify",)
        assert [
            c.email for c in await contacts_of(session, customer_id="cust-1", role="notify")
        ] == ["mario@cust1.example"]
    # Reload: Jane leaves, Mario switches to English and moves to another customer.
    moved = ContactRecord(email="mario@cust1.example", name="Mario", language="en")
    other = CustomerRecord(id="cust-2", name="Two", contacts=(moved,))
    await sync_inventory(database.sessionmaker, customers=[customer(), other], ntus=[], nodes=[])
    async with database.sessionmaker() as session:
        assert await contact_by_email(session, "jane@cust1.example") is None
        found = await contact_by_email(session, "mario@cust1.example")
        assert found is not None and (found.customer_id, found.language) == ("cust-2", "en")
    # The same from an inventory file, as nms reloads it.
    inventory = parse_inventory(
        "customers:\n  - id: cust-2\n    name: Two\n    contacts:\n"
        "      - {email: Mario@Cust1.example, language: it, roles: [notify, escalation],\n"
        "         timezone: Europe/Rome}\n"
        "ntus: []\n",
        source="inv.yaml",
        fmt="yaml",
    )
    await sync_nms_inventory(database.sessionmaker, inventory)
    async with database.sessionmaker() as session:
        found = await contact_by_email(session, "mario@cust1.example")
        assert found is not None
        assert (found.language, found.roles) == ("it", ("notify", "escalation"))
        assert found.timezone == "Europe/Rome"


async def test_notify_contacts_get_case_mails_in_their_language_and_answers_go_to_the_writer(
    database: Database, incidents: IncidentService, clock: FakeClock, smtp_sink: SmtpSink
) -> None:
    contacts = (
        ContactRecord(
            email="mario@cust1.example",
            name="Mario Rossi",
            language="it",
            timezone="Europe/Rome",
        ),
        ContactRecord(email="jane@cust1.example", name="Jane Doe", roles=("notify", "technical")),
        ContactRecord(email="billing@cust1.example", roles=("billing",)),  # no case mail
    )
    # The legacy address duplicates Mario's (any case) and adds one more.
    legacy = ["MARIO@cust1.example", "ops@cust1.example"]
    await sync_inventory(
        database.sessionmaker,
        # Jane has no zone of her own: she reads the customer's.
        customers=[customer(*contacts, notify_email=legacy, timezone="America/New_York")],
        ntus=[],
        nodes=[],
    )
    case = await open_case(incidents, database)
    async with database.sessionmaker() as session:
        await enqueue(
            session,
            case_id=None,
            customer_id="cust-1",
            kind=K.REQUEST_REFUSED,
            data={
                "to": ["Writer@Cust1.example"],
                "in_reply_to": "<asked-1@cust1.example>",
                "mail_subject": "Help",
                "reason": "contract_expired",
                "at": START,
            },
            at=START,
        )
        await session.commit()
    sender = NotificationDispatcher(
        sessionmaker=database.sessionmaker,
        settings=settings_for(smtp_sink),
        clock=clock,
        rng=lambda: 1.0,
        mail=MailSettings(address="support@nms.example"),
    )
    assert await sender.run_once(START) == 4

    sent = zip(smtp_sink.recipients, smtp_sink.messages, strict=True)
    by_rcpt = {rcpt[0]: mail for rcpt, mail in sent}
    assert set(by_rcpt) == {
        "mario@cust1.example",
        "jane@cust1.example",
        "ops@cust1.example",
        "writer@cust1.example",
    }
    italian = by_rcpt["mario@cust1.example"]
    assert italian["Subject"] == f"[{case.ref}] Caso aperto - stato: nuovo"
    assert italian["Content-Language"] == "it"
    text = plain_text(italian)
    assert text.startswith("Gentile Mario Rossi,") and "Cosa è successo:" in text
    # Mario's own zone, with the offset.
    assert "1 marzo 2026, 12:50 (UTC+01:00, Europe/Rome)" in text
    english = by_rcpt["jane@cust1.example"]
    assert english["Subject"] == f"[{case.ref}] Case opened - status: new"
    assert plain_text(english).startswith("Dear Jane Doe,")
    assert "1 March 2026, 06:50 (UTC-05:00, America/New_York)" in plain_text(english)
    assert plain_text(by_rcpt["ops@cust1.example"]).startswith("Dear Cust One,")
    # The same mail to every recipient: one Message-ID.
    assert italian["Message-ID"] == english["Message-ID"]

    refused = by_rcpt["writer@cust1.example"]
    assert refused["Subject"] == "Re: Help - no case opened"
    assert refused["Auto-Submitted"] == "auto-replied"
    assert refused["In-Reply-To"] == "<asked-1@cust1.example>"
    assert "your contract with us has expired" in plain_text(refused)
    async with database.sessionmaker() as session:
        targets = (await session.execute(select(NotificationDelivery.target))).scalars().all()
    assert sorted(targets) == sorted(by_rcpt)  # no webhook/MQTT for the answer


def test_nms_refuses_to_start_with_a_broken_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("NMS_")]:
        monkeypatch.delenv(name)
    _copy(tmp_path / "tpl", "en", "case_solved", "Subject: [${ref}] ok\nSolved at ${solved}.\n")
    config = tmp_path / "nms.yaml"
    config.write_text(f"mail:\n  templates_dir: {tmp_path / 'tpl'}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    [problem] = caught.value.problems
    assert problem.startswith(
        f"{config}: mail: templates_dir: {tmp_path}/tpl/en/case_solved.txt:2:"
    )
    assert "unknown placeholder ${solved}" in problem
