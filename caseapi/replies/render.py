"""Filling a canned reply with a case's fields (pure).

A reply's title and body are ``string.Template`` text: ``${name}`` from the fixed set
``PLACEHOLDERS`` (no code, no attribute access; ``$$`` is a dollar sign). They are
checked when a reply is saved, so sending never meets an unknown name. Times are
shown in the customer's zone, with the offset, in the reply's language
(``caseapi.core.localtime``); a field the case does not have yet reads as
``NOT_SET`` in that language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from string import Template
from typing import Final

from caseapi.core.localtime import format_time
from caseapi.replies.errors import ReplyTemplateError

#: Every ``${name}`` a reply may use, with what it shows (documented in the OpenAPI).
PLACEHOLDERS: Final[Mapping[str, str]] = {
    "ref": "the case reference, e.g. C-000042",
    "summary": "the case's one-line summary",
    "status": "the case's status (new, in_progress, waiting_customer, ...)",
    "priority": "P1 ... P4",
    "type": "incident, service_request, ...",
    "customer_name": "the customer's name",
    "site": "the affected site",
    "service_id": "the affected service",
    "ntu_id": "the affected NTU",
    "outage_start": "when the outage started (customer's time zone)",
    "detected_at": "when it was detected",
    "restored_at": "when service was restored",
    "etr": "the estimated time of restoration",
    "waiting_since": "since when the case waits for the customer",
    "auto_close_at": "when a case waiting for the customer closes by itself",
    "assignee_name": "who works on the case",
    "now": "the time the reply is sent",
}
#: What an unset field reads as, per language (English for any other).
NOT_SET: Final[Mapping[str, str]] = {"en": "(not set)", "it": "(non definito)"}


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """What a reply may show of one case (values as stored; times aware UTC)."""

    values: Mapping[str, str | datetime | None]
    #: The customer's IANA zone (``None``: UTC).
    zone: str | None


def check_template(field: str, text: str) -> str:
    """``text`` if every ``${name}`` in it is a placeholder.

    Raises:
        ReplyTemplateError: Bad ``$`` syntax or an unknown placeholder, naming ``field``.
    """
    template = Template(text)
    if not template.is_valid():
        raise ReplyTemplateError(
            field, "invalid '$' syntax (placeholders are ${name}; write $$ for '$')"
        )
    for name in template.get_identifiers():
        if name not in PLACEHOLDERS:
            raise ReplyTemplateError(
                field,
                f"unknown placeholder ${{{name}}} (known: {', '.join(sorted(PLACEHOLDERS))})",
            )
    return text


def fill(text: str, facts: CaseFacts, *, language: str) -> str:
    """``text`` with every placeholder replaced by the case's value (see module doc)."""
    missing = NOT_SET.get(language, NOT_SET["en"])
    shown: dict[str, str] = {}
    for name in PLACEHOLDERS:
        value = facts.values.get(name)
        if value is None or value == "":
            shown[name] = missing
        elif isinstance(value, datetime):
            shown[name] = format_time(value, zone=facts.zone, language=language)
        else:
            shown[name] = str(value)
    return Template(text).substitute(shown)
