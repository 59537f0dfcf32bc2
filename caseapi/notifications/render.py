"""Message content: the public event payload and the e-mail templates (pure).

Only whitelisted, customer-visible fields ever leave the system: ``public_data``
copies the fields a kind may show out of the outbox row's ``data`` and drops
everything else (internal comments, actors, dedup keys). Every timestamp is
rendered in UTC ISO 8601.

Every case message carries the case's current estimated time of restoration: the
payload's ``etr`` (``null`` when none is set) and a line of every case e-mail.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from caseapi.notifications.enums import MAINTENANCE_KINDS, NotificationKind

K = NotificationKind

#: The case facts a case message may carry to the customer (nothing else is sent).
CASE_FIELDS: Final = (
    "ref",
    "status",
    "priority",
    "summary",
    "site",
    "service_id",
    "ntu_id",
    "outage_start",
    "detected_at",
    "restored_at",
    "monitoring_until",
    "closed_at",
    "etr",
    "at",
)
_MAINTENANCE_FIELDS: Final = (
    "maintenance_id",
    "title",
    "maintenance_kind",
    "starts_at",
    "ends_at",
    "services",
    "sites",
    "expected_impact",
    "at",
)
#: Fields each kind may show the customer, besides the common ones.
_EXTRA_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    K.PUBLIC_UPDATE: ("body",),
    K.RFO_PUBLISHED: ("version", "correction"),
    K.CASE_CLOSED: ("reason",),
    K.WAITING_CUSTOMER_REMINDER: ("waiting_since", "closes_at"),
    K.MAINTENANCE_COMPLETED: ("completed_at", "impact_start", "impact_end", "actual_impact"),
    K.ETR_UPDATED: ("previous_etr", "note"),
}
_TIME_FIELDS: Final = frozenset(
    {
        "outage_start",
        "detected_at",
        "restored_at",
        "monitoring_until",
        "closed_at",
        "at",
        "waiting_since",
        "closes_at",
        "starts_at",
        "ends_at",
        "completed_at",
        "impact_start",
        "impact_end",
        "etr",
        "previous_etr",
    }
)
#: How an e-mail shows an ETR that is not set.
NO_ETR: Final = "not set"

#: kind -> (title, what happened, what is next); ``{field}`` placeholders.
_TEMPLATES: Final[Mapping[str, tuple[str, str, str]]] = {
    K.CASE_OPENED: (
        "Case opened",
        "We opened case {ref} ({priority}): {summary}. Site: {site}. "
        "The problem started at {outage_start} and was detected at {detected_at}.",
        "An engineer is working on it; we will update you on this case. Quote {ref} in any reply.",
    ),
    K.PUBLIC_UPDATE: (
        "Update",
        "Our support team wrote on case {ref} at {at}:\n\n{body}",
        "Reply to this message or through the API to answer.",
    ),
    K.CASE_SOLVED: (
        "Service restored",
        "Service was restored at {restored_at}; case {ref} is solved.",
        "We keep monitoring the service until {monitoring_until}. If the problem "
        "comes back before then, the case is reopened automatically.",
    ),
    K.RFO_PUBLISHED: (
        "Reason for outage published",
        "The reason-for-outage report (version {version}) for case {ref} was published at {at}.",
        "Read it through the API: GET /v1/cases/{ref}/rfo (add ?format=pdf for the PDF).",
    ),
    K.CASE_CLOSED: (
        "Case closed",
        "Case {ref} was closed at {closed_at}.",
        "Nothing; if you see the problem again, open a new case and quote {ref}.",
    ),
    K.WAITING_CUSTOMER_REMINDER: (
        "We are waiting for your reply",
        "Case {ref} has been waiting for your reply since {waiting_since}.",
        "Please reply; without an answer the case closes automatically at {closes_at}. "
        "If you no longer need a request you opened, cancel it with a reason "
        '(POST /v1/cases/{ref}/cancel, body {{"reason": "..."}}).',
    ),
    K.ETR_UPDATED: (
        "Estimated time of restoration",
        "Our support team updated the estimated time of restoration (ETR) of case {ref} "
        "at {at}: {etr} (previously {previous_etr}).{note}",
        "We keep working on it and will update you on this case; the ETR may change.",
    ),
    K.MAINTENANCE_ANNOUNCED: (
        "Maintenance announced",
        "{maintenance_kind} maintenance {maintenance_id}: {title}. Window: {starts_at} "
        "to {ends_at}. Expected impact: {expected_impact}. Services: {services}.",
        "We will remind you before the window and tell you when the work is complete.",
    ),
    K.MAINTENANCE_REMINDER: (
        "Maintenance reminder",
        "Maintenance {maintenance_id} ({title}) starts at {starts_at} and ends at "
        "{ends_at}. Expected impact: {expected_impact}.",
        "We will tell you when the work starts and when it is complete.",
    ),
    K.MAINTENANCE_STARTED: (
        "Maintenance started",
        "Maintenance {maintenance_id} ({title}) started at {at}; planned end {ends_at}.",
        "We will tell you when the work is complete.",
    ),
    K.MAINTENANCE_COMPLETED: (
        "Maintenance completed",
        "Maintenance {maintenance_id} ({title}) was completed at {completed_at}. "
        "Actual impact: {actual_impact} (from {impact_start} to {impact_end}).",
        "Nothing; if you still see a problem, open a case and quote {maintenance_id}.",
    ),
    K.MAINTENANCE_CANCELLED: (
        "Maintenance cancelled",
        "Maintenance {maintenance_id} ({title}), planned from {starts_at} to {ends_at}, "
        "was cancelled at {at}.",
        "Nothing; the work will not take place in this window. Any new date is announced "
        "separately.",
    ),
}


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
    common = _MAINTENANCE_FIELDS if kind in MAINTENANCE_KINDS else CASE_FIELDS
    allowed = (*common, *_EXTRA_FIELDS.get(kind, ()))
    out: dict[str, Any] = {}
    for name in allowed:
        if name in data and data[name] is not None:
            out[name] = _time(data[name]) if name in _TIME_FIELDS else data[name]
    if kind not in MAINTENANCE_KINDS:
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


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "(not known yet)"


def _display(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value) or "(none)"
    return str(value)


def render_email(envelope: Envelope) -> RenderedEmail:
    """Subject, plain-text and HTML body of the e-mail for ``envelope``."""
    title, happened, nxt = _TEMPLATES[envelope.kind]
    fields = public_data(envelope.kind, envelope.data, case_ref=envelope.case_ref)
    values = _Blank({name: _display(value) for name, value in fields.items()})
    if envelope.kind not in MAINTENANCE_KINDS:
        values["etr"] = NO_ETR if fields["etr"] is None else fields["etr"]
    if envelope.kind == K.ETR_UPDATED:
        values.setdefault("previous_etr", NO_ETR)
        values["note"] = f"\n\n{fields['note']}" if fields.get("note") else ""
    what = happened.format_map(values)
    then = nxt.format_map(values)
    if envelope.kind in MAINTENANCE_KINDS:
        subject = f"[Maintenance {values['maintenance_id']}] {title}: {values['title']}"
        header = [f"Maintenance: {values['maintenance_id']}"]
    else:
        subject = f"[{values['ref']}] {title} - status: {values['status']}"
        header = [
            f"Case: {values['ref']}",
            f"Status: {values['status']}",
            "Estimated time of restoration: "
            + (NO_ETR if fields["etr"] is None else f"{fields['etr']} (UTC)"),
        ]
    header.append(f"Sent for event at: {utc_iso(envelope.created_at)} (UTC)")
    greeting = f"Dear {envelope.customer_name},"
    text = "\n".join(
        [greeting, "", *header, "", "What happened:", what, "", "What is next:", then, ""]
    )
    esc = html.escape
    body_html = (
        f"<html><body><p>{esc(greeting)}</p>"
        f"<p>{'<br>'.join(esc(line) for line in header)}</p>"
        f"<h3>What happened</h3><p>{esc(what).replace(chr(10), '<br>')}</p>"
        f"<h3>What is next</h3><p>{esc(then)}</p></body></html>"
    )
    return RenderedEmail(subject=subject, text=text, html=body_html)
