"""What a staff alert says, in words: ``SLA breached: time to repair`` (pure).

The outbox rows keep the machine name of the alert (``data["alert"]``:
``sla_breached``, ``new_case``, ...) for webhooks and MQTT consumers; people read the
``headline`` made here, in the member's language (``en`` or ``it``; anything else
reads English), and the ``next_step`` paragraph of the mail. Times are relative to
``now`` (the instant the step is sent), rounded up to the minute, so "due in 12 min"
never promises more time than there is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

_CLOCKS: Final[Mapping[str, Mapping[str, str]]] = {
    "en": {
        "first_response": "first response",
        "time_to_repair": "time to repair",
        "commitment": "commitment",
    },
    "it": {
        "first_response": "prima risposta",
        "time_to_repair": "tempo di ripristino",
        "commitment": "impegno",
    },
}
_COMMITMENTS: Final[Mapping[str, Mapping[str, str]]] = {
    "en": {
        "next_update": "next update",
        "engineer_on_site": "engineer on site",
        "callback": "callback",
        "other": "other",
    },
    "it": {
        "next_update": "prossimo aggiornamento",
        "engineer_on_site": "tecnico sul posto",
        "callback": "richiamata",
        "other": "altro",
    },
}
_MISSED: Final[Mapping[str, Mapping[str, str]]] = {
    "en": {
        "first response overdue": "first response",
        "time to repair exceeded": "time to repair",
    },
    "it": {
        "first response overdue": "prima risposta",
        "time to repair exceeded": "tempo di ripristino",
    },
}
_TEXT: Final[Mapping[str, Mapping[str, str]]] = {
    "en": {
        "new_case": "New {priority} case",
        "sla_breached": "SLA breached: {what}",
        "sla_breached_level": "SLA breached: {what} - escalated to {level}",
        "sla_at_risk": "SLA at risk: {what} due in {left}",
        "sla_at_risk_overdue": "SLA at risk: {what} overdue",
        "commitment_missed": "Commitment missed: {what}",
        "escalated": "Escalated to {level}",
        "customer_escalation": "Customer escalated the case to {level}",
        "customer_reply": "Customer replied",
        "unassigned": "Case still unassigned",
        "level_due": "{level} notice: case still open below {level}",
        "unacknowledged": "Nobody acknowledged: {headline}",
        "ack": (
            "Acknowledge it (no login needed, the link works once):\n{url}\n"
            "If nobody acknowledges in time, the next person on call is alerted."
        ),
        "fallback": (
            "Nobody on the list acknowledged this alert (tried: {tried}).\n"
            "Please make sure someone takes the case."
        ),
        "minutes": "{m} min",
        "hours": "{h} h {m} min",
    },
    "it": {
        "new_case": "Nuovo caso {priority}",
        "sla_breached": "SLA violato: {what}",
        "sla_breached_level": "SLA violato: {what} - escalation a {level}",
        "sla_at_risk": "SLA a rischio: {what} in scadenza tra {left}",
        "sla_at_risk_overdue": "SLA a rischio: {what} scaduto",
        "commitment_missed": "Impegno mancato: {what}",
        "escalated": "Escalation a {level}",
        "customer_escalation": "Il cliente ha chiesto l'escalation a {level}",
        "customer_reply": "Il cliente ha risposto",
        "unassigned": "Caso ancora non assegnato",
        "level_due": "Avviso {level}: caso ancora aperto sotto {level}",
        "unacknowledged": "Nessuna presa in carico: {headline}",
        "ack": (
            "Conferma la presa in carico (senza login, il link vale una volta):\n{url}\n"
            "Se nessuno conferma in tempo, viene avvisata la persona successiva di turno."
        ),
        "fallback": (
            "Nessuno della lista ha confermato questo avviso (avvisati: {tried}).\n"
            "Assicuratevi che qualcuno prenda in carico il caso."
        ),
        "minutes": "{m} min",
        "hours": "{h} h {m} min",
    },
}


def _lang(language: str) -> str:
    return language if language in _TEXT else "en"


def clock_label(clock: str, *, kind: str | None = None, language: str = "en") -> str:
    """``time_to_repair`` -> ``time to repair``; a commitment with its kind."""
    lang = _lang(language)
    label = _CLOCKS[lang].get(clock, clock.replace("_", " "))
    if clock == "commitment" and kind:
        label = f"{label} ({_COMMITMENTS[lang].get(kind, kind.replace('_', ' '))})"
    return label


def time_left(due: datetime, now: datetime, *, language: str = "en") -> str | None:
    """``12 min``, ``1 h 5 min`` until ``due`` (rounded up); ``None`` when it has passed."""
    seconds = (due - now).total_seconds()
    if seconds <= 0:
        return None
    minutes = math.ceil(seconds / 60)
    text = _TEXT[_lang(language)]
    if minutes < 60:
        return text["minutes"].format(m=minutes)
    return text["hours"].format(h=minutes // 60, m=minutes % 60)


def headline(
    kind: str,
    *,
    details: Mapping[str, Any] | None,
    priority: str,
    level: str,
    now: datetime,
    language: str = "en",
) -> str:
    """The subject line of an alert of ``kind`` (see the module docstring)."""
    lang = _lang(language)
    text = _TEXT[lang]
    facts = dict(details or {})
    base, _, suffix = kind.partition(":")
    what = clock_label(str(facts.get("clock") or ""), kind=facts.get("commitment"), language=lang)
    if base == "new_case":
        return text["new_case"].format(priority=priority)
    if base == "sla_at_risk":
        due = facts.get("due_at")
        left = time_left(datetime.fromisoformat(due), now, language=lang) if due else None
        if left is None:
            return text["sla_at_risk_overdue"].format(what=what)
        return text["sla_at_risk"].format(what=what, left=left)
    if base == "sla_breached":
        missed: Sequence[str] = facts.get("missed") or ()
        if not facts.get("clock") and missed:
            what = ", ".join(_missed(m, lang) for m in missed)
        if facts.get("escalated"):
            return text["sla_breached_level"].format(what=what, level=level)
        return text["sla_breached"].format(what=what)
    if base == "commitment_missed":
        return text["commitment_missed"].format(
            what=_COMMITMENTS[lang].get(str(facts.get("commitment")), "?")
        )
    if base == "level_due":
        return text["level_due"].format(level=suffix or level)
    if base in text:
        return text[base].format(level=level)
    return kind.replace("_", " ").capitalize()


def _missed(reason: str, lang: str) -> str:
    """A missed-deadline reason of an escalation (``caseapi.cases.deadlines``) in words."""
    if reason.startswith("commitment missed: "):
        return clock_label("commitment", kind=reason.partition(": ")[2], language=lang)
    return _MISSED[lang].get(reason, reason)


def unacknowledged(headline_text: str, *, language: str = "en") -> str:
    """The headline of the fallback's message: nobody acknowledged ``headline_text``."""
    return _TEXT[_lang(language)]["unacknowledged"].format(headline=headline_text)


def next_step(*, ack_url: str | None, tried: Sequence[str], language: str = "en") -> str:
    """What the reader should do: acknowledge with the link, or (the fallback) see to it."""
    text = _TEXT[_lang(language)]
    if ack_url:
        return text["ack"].format(url=ack_url)
    return text["fallback"].format(tried=", ".join(tried) or "-")
