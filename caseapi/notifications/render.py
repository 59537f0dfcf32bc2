"""Message content: the public event payload and the e-mails (pure).

Only whitelisted, customer-visible fields ever leave the system: ``public_data``
copies the fields a kind may show out of the outbox row's ``data`` and drops
everything else (internal comments, actors, dedup keys, the ``to`` of an answer).
The payload's timestamps are UTC ISO 8601. An e-mail fills the template file of its
kind in the recipient's language (``caseapi.notifications.templating``) with those
fields as the language shows them (``caseapi.notifications.languages``), every time
in the recipient's zone with its offset (``caseapi.core.localtime``).

Every case message carries the case's current estimated time of restoration: the
payload's ``etr`` (``null`` when none is set) and a line of every case e-mail.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from caseapi.notifications.enums import MAINTENANCE_KINDS, NO_CASE_KINDS, NotificationKind
from caseapi.notifications.languages import TIME_FIELDS, language_for
from caseapi.notifications.templating import (
    DEFAULT_LANGUAGE,
    EXTRA_FIELDS,
    TemplateSet,
    common_fields,
    shipped_templates,
)

K = NotificationKind

#: The case facts a case message may carry to the customer (nothing else is sent).
CASE_FIELDS: Final = common_fields(K.CASE_OPENED)
#: How an English e-mail shows an ETR that is not set.
NO_ETR: Final = "not set"


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the channels know about one outbox row."""

    event_id: str
    kind: str
    customer_id: str
    customer_name: str
    case_ref: str | None
    created_at: datetime
    data: Mapping[str, Any]
    #: The case it is about (threads its mails); ``None`` for maintenance.
    case_id: int | None = None


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def utc_iso(value: datetime) -> str:
    """``value`` in UTC ISO 8601 (``2026-03-01T12:00:00+00:00``)."""
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return value.astimezone(UTC).isoformat()


def _time(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
        return utc_iso(parsed) if parsed.tzinfo is not None else value
    return value


def public_data(kind: str, data: Mapping[str, Any], *, case_ref: str | None) -> dict[str, Any]:
    """The customer-visible fields of ``data`` for ``kind`` (times in UTC ISO)."""
    allowed = (*common_fields(kind), *EXTRA_FIELDS.get(kind, ()))
    out: dict[str, Any] = {}
    for name in allowed:
        if name in data and data[name] is not None:
            out[name] = _time(data[name]) if name in TIME_FIELDS else data[name]
    if kind not in MAINTENANCE_KINDS and kind not in NO_CASE_KINDS:
        if case_ref is not None:
            out["ref"] = case_ref
        # Always there: "no estimate" is news too.
        out.setdefault("etr", None)
    return out


def public_payload(envelope: Envelope) -> dict[str, Any]:
    """The JSON document sent to webhooks and MQTT."""
    return {
        "id": envelope.event_id,
        "type": envelope.kind,
        "created_at": utc_iso(envelope.created_at),
        "customer_id": envelope.customer_id,
        "case_ref": envelope.case_ref,
        "data": public_data(envelope.kind, envelope.data, case_ref=envelope.case_ref),
    }


class _Blank(dict[str, str]):
    def __init__(self, values: Mapping[str, str], missing: str) -> None:
        super().__init__(values)
        self._missing = missing

    def __missing__(self, key: str) -> str:
        return self._missing


def render_email(
    envelope: Envelope,
    *,
    language: str = DEFAULT_LANGUAGE,
    recipient_name: str | None = None,
    support_address: str | None = None,
    templates: TemplateSet | None = None,
    timezone: str | None = None,
) -> RenderedEmail:
    """Subject, plain-text and HTML body of the e-mail for ``envelope``.

    Args:
        envelope: The outbox row.
        language: The recipient's language (``en`` where no template has it).
        recipient_name: Whom it greets (default: the customer's name).
        support_address: Where to answer (``mail.address``), for the templates.
        templates: The checked template files (default: the shipped ones).
        timezone: The recipient's IANA zone: every time is shown there, with its
            offset (``caseapi.core.localtime``; default UTC).
    """
    templates = templates or shipped_templates()
    lang = language_for(language if language in templates.languages else DEFAULT_LANGUAGE)
    template = templates.get(lang.code, envelope.kind)
    fields = public_data(envelope.kind, envelope.data, case_ref=envelope.case_ref)
    values = {name: lang.show(name, value, timezone) for name, value in fields.items()}
    if "etr" in fields:
        values["etr"] = lang.no_etr if fields["etr"] is None else values["etr"]
        values["etr_shown"] = (
            lang.no_etr if fields["etr"] is None else lang.with_zone(values["etr"])
        )
    if envelope.kind == K.ETR_UPDATED:
        values.setdefault("previous_etr", lang.no_etr)
        values["note"] = f"\n\n{fields['note']}" if fields.get("note") else ""
    if envelope.kind == K.CASE_CLOSED:
        values.setdefault("reason", "")
    if envelope.kind == K.STAFF_ALERT:
        # Rows queued before alerts were worded (``caseapi.oncall.wording``).
        values.setdefault("headline", values.get("alert", ""))
        values.setdefault("next_step", values.get("ack_url", ""))
    if "reason" in fields:
        values["reason_text"] = lang.reason(str(fields["reason"]))
    values.setdefault("mail_subject", "")
    values["customer_name"] = envelope.customer_name
    values["recipient_name"] = recipient_name or envelope.customer_name
    values["sent_at"] = lang.time(envelope.created_at, timezone)
    values["support_address"] = support_address or ""
    filled = _Blank(values, lang.unknown)
    subject = " ".join(template.subject.substitute(filled).split())
    text = template.body.substitute(filled).rstrip("\n") + "\n"
    return RenderedEmail(subject=subject, text=text, html=_html(text))


def _html(text: str) -> str:
    """The text as HTML: one paragraph per blank-line-separated block."""
    blocks = [block for block in text.strip("\n").split("\n\n") if block.strip()]
    paragraphs = "".join(
        f"<p>{html.escape(block).replace(chr(10), '<br>')}</p>" for block in blocks
    )
    return f"<html><body>{paragraphs}</body></html>"
