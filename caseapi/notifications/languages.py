"""How a mail shows values in each language: times, lists, status names, reasons (pure).

Templates (``caseapi.notifications.templating``) hold the sentences; this holds
what a sentence's values look like. Times are shown in the reader's zone with the
offset and the zone's name (``caseapi.core.localtime``). A language with templates
but no entry here shows values as English does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Final

from caseapi.core.localtime import format_time, parse_instant

#: The message fields that hold a time (UTC ISO 8601 in the payload, shown per language).
TIME_FIELDS: Final = frozenset(
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


@dataclass(frozen=True, slots=True)
class Language:
    code: str
    no_etr: str
    unknown: str
    none: str
    #: Appended to a shown ETR (empty: every shown time carries its zone).
    zone_note: str
    #: Translations of stored values (status, priority words, maintenance kind).
    words: Mapping[str, str] = field(default_factory=dict)
    #: ``request_refused`` / ``case_closed`` reason codes as a sentence.
    reasons: Mapping[str, str] = field(default_factory=dict)

    def time(self, value: datetime, zone: str | tzinfo | None = None) -> str:
        """``value`` in ``zone`` (default UTC) with its offset, as this language writes it."""
        return format_time(value, zone=zone, language=self.code)

    def with_zone(self, shown_time: str) -> str:
        """A shown time with its zone spelled out where the format lacks it."""
        return f"{shown_time}{self.zone_note}"

    def show(self, name: str, value: Any, zone: str | tzinfo | None = None) -> str:
        """``value`` of field ``name`` as this language shows it (times in ``zone``)."""
        if isinstance(value, list | tuple):
            return ", ".join(self.show(name, item, zone) for item in value) or self.none
        if name in TIME_FIELDS and isinstance(value, str):
            parsed = parse_instant(value)
            return value if parsed is None else self.time(parsed, zone)
        if isinstance(value, datetime):
            return self.time(value, zone)
        text = str(value)
        return self.words.get(text, text) if name in ("status", "maintenance_kind") else text

    def reason(self, code: str) -> str:
        return self.reasons.get(code, code)


ENGLISH: Final = Language(
    code="en",
    no_etr="not set",
    unknown="(not known yet)",
    none="(none)",
    zone_note="",
    reasons={
        "contract_expired": "your contract with us has expired",
        "account_suspended_unpaid": "your account is suspended for unpaid invoices",
        "expired": "your contract with us has expired",
        "unpaid": "your account is suspended for unpaid invoices",
    },
)
ITALIAN: Final = Language(
    code="it",
    no_etr="non definito",
    unknown="(non ancora noto)",
    none="(nessuno)",
    zone_note="",
    words={
        "new": "nuovo",
        "in_progress": "in lavorazione",
        "waiting_customer": "in attesa di vostra risposta",
        "waiting_supplier": "in attesa del fornitore",
        "solved": "risolto",
        "rfo_pending": "in attesa del rapporto sul disservizio",
        "closed": "chiuso",
        "cancelled": "annullato",
        "merged": "unito a un altro caso",
        "planned": "programmata",
        "emergency": "urgente",
    },
    reasons={
        "contract_expired": "il vostro contratto con noi è scaduto",
        "account_suspended_unpaid": "il vostro account è sospeso per fatture non pagate",
        "expired": "il vostro contratto con noi è scaduto",
        "unpaid": "il vostro account è sospeso per fatture non pagate",
    },
)
_LANGUAGES: Final = {language.code: language for language in (ENGLISH, ITALIAN)}


def language_for(code: str) -> Language:
    """How ``code`` shows values (English's way for a language added only as templates)."""
    found = _LANGUAGES.get(code)
    if found is not None:
        return found
    return Language(
        code=code,
        no_etr=ENGLISH.no_etr,
        unknown=ENGLISH.unknown,
        none=ENGLISH.none,
        zone_note=ENGLISH.zone_note,
        reasons=ENGLISH.reasons,
    )
