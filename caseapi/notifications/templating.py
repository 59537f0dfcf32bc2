"""Customer mail templates as files, one per language and kind (loading is the only I/O).

Shipped templates live in ``caseapi/notifications/templates/<language>/<kind>.txt``;
a provider edits copies in ``mail.templates_dir/<language>/<kind>.txt``, each of
which replaces the shipped one (a language folder there may also add a language).
A file's first line is ``Subject: ...``; the body follows after a blank line.
Placeholders are ``${name}`` (``string.Template``: no code, no attribute access;
``$$`` is a dollar sign); which names a kind may use is ``placeholders(kind)``.

Everything is checked when the templates are loaded (at start-up), so a broken file
stops the service with its path instead of breaking one customer's mail later:
unreadable text, a missing ``Subject:`` line, bad ``$`` syntax, a placeholder the
kind does not have, a case mail whose subject lacks ``${ref}``, a file that names
no kind, and a language that lacks a kind.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Final

from caseapi.notifications.enums import MAINTENANCE_KINDS, NO_CASE_KINDS, NotificationKind

K = NotificationKind

#: Where the shipped templates are (package data).
SHIPPED_DIR: Final = Path(__file__).parent / "templates"
#: The language of a recipient without one, and the fallback for an unknown one.
DEFAULT_LANGUAGE: Final = "en"
_SUFFIX: Final = ".txt"
_SUBJECT: Final = "Subject:"

#: Every case mail may show these (``caseapi.notifications.render.CASE_FIELDS``).
_CASE: Final = (
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
_MAINTENANCE: Final = (
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
#: Fields each kind shows besides its common ones (the data it is enqueued with).
EXTRA_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    K.PUBLIC_UPDATE: ("body",),
    K.RFO_PUBLISHED: ("version", "correction"),
    K.CASE_CLOSED: ("reason",),
    K.WAITING_CUSTOMER_REMINDER: ("waiting_since", "closes_at"),
    K.MAINTENANCE_COMPLETED: ("completed_at", "impact_start", "impact_end", "actual_impact"),
    K.ETR_UPDATED: ("previous_etr", "note"),
    K.CASE_ACKNOWLEDGED: ("mail_subject",),
    K.FOLLOW_UP_OPENED: ("previous_ref", "mail_subject"),
    K.REQUEST_REFUSED: ("reason", "mail_subject"),
    K.STAFF_ALERT: (
        "alert",
        "headline",
        "level",
        "step",
        "ack_url",
        "team",
        "next_step",
        "clock",
        "due_at",
        "commitment",
        "tried",
        "fallback",
    ),
}
#: Computed for every mail: who it greets, when it was sent, where to answer.
DERIVED: Final = (
    "recipient_name",
    "customer_name",
    "sent_at",
    "support_address",
    "reason_text",
    "etr_shown",
)


def common_fields(kind: str) -> tuple[str, ...]:
    """The facts every mail of ``kind`` may show (before ``EXTRA_FIELDS``)."""
    if kind in MAINTENANCE_KINDS:
        return _MAINTENANCE
    if kind in NO_CASE_KINDS:
        return ("at",)
    return _CASE


def placeholders(kind: str) -> frozenset[str]:
    """The ``${name}`` a template of ``kind`` may use."""
    return frozenset((*common_fields(kind), *EXTRA_FIELDS.get(kind, ()), *DERIVED))


class TemplateError(ValueError):
    """A template file that cannot be used; the message names the file."""


@dataclass(frozen=True, slots=True)
class MailTemplate:
    subject: Template
    body: Template
    path: str


@dataclass(frozen=True, slots=True)
class TemplateSet:
    """Every kind in every language, checked."""

    templates: Mapping[tuple[str, str], MailTemplate]
    languages: frozenset[str]

    def get(self, language: str, kind: str) -> MailTemplate:
        """The template of ``kind`` in ``language`` (English if it has none)."""
        found = self.templates.get((language, kind))
        if found is None:
            found = self.templates[(DEFAULT_LANGUAGE, kind)]
        return found


def parse_template(text: str, *, kind: str, path: str) -> MailTemplate:
    """Check one template's text (see the module docstring).

    Raises:
        TemplateError: What is wrong, naming ``path``.
    """
    first, _, rest = text.partition("\n")
    if not first.startswith(_SUBJECT):
        raise TemplateError(f"{path}:1: the first line must be 'Subject: ...'")
    subject_text = first.removeprefix(_SUBJECT).strip()
    body_text = rest.removeprefix("\n")
    # The file line of the body's first line (after the blank line, if any).
    body_start = 2 + (len(rest) - len(body_text))
    if not subject_text or not body_text.strip():
        raise TemplateError(f"{path}: needs a subject and a body")
    allowed = placeholders(kind)
    parts = []
    for offset, part_text in ((0, subject_text), (1, body_text)):
        template = Template(part_text)
        if not template.is_valid():
            raise TemplateError(
                f"{path}: invalid '$' syntax (placeholders are ${{name}}; write $$ for '$')"
            )
        for name in template.get_identifiers():
            if name not in allowed:
                line = 1 if offset == 0 else body_start - 1 + _line_of(body_text, name)
                raise TemplateError(
                    f"{path}:{line}: unknown placeholder ${{{name}}} for {kind} "
                    f"(known: {', '.join(sorted(allowed))})"
                )
        parts.append(template)
    subject, body = parts
    needed = "maintenance_id" if kind in MAINTENANCE_KINDS else "ref"
    if kind not in NO_CASE_KINDS and needed not in subject.get_identifiers():
        # The reference in the subject threads the customer's reply to the case.
        raise TemplateError(f"{path}:1: the subject must contain ${{{needed}}}")
    return MailTemplate(subject=subject, body=body, path=path)


def _line_of(text: str, name: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if f"${{{name}}}" in line or f"${name}" in line:
            return number
    return 1


def _read_folder(root: Path, found: dict[tuple[str, str], MailTemplate]) -> None:
    kinds = {kind.value for kind in NotificationKind}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for file in sorted(folder.iterdir()):
            if file.name.startswith("."):
                continue
            kind = file.name.removesuffix(_SUFFIX)
            if not file.name.endswith(_SUFFIX) or kind not in kinds:
                raise TemplateError(
                    f"{file}: unknown template (expected <kind>.txt, kind one of "
                    f"{', '.join(sorted(kinds))})"
                )
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise TemplateError(f"{file}: cannot read as UTF-8 text: {exc}") from None
            found[(folder.name, kind)] = parse_template(text, kind=kind, path=str(file))


def load_templates(override: Path | None = None) -> TemplateSet:
    """The shipped templates, each replaced by its copy in ``override`` if there is one.

    Raises:
        TemplateError: A broken or unknown file, or a language without every kind.
    """
    found: dict[tuple[str, str], MailTemplate] = {}
    _read_folder(SHIPPED_DIR, found)
    if override is not None:
        if not override.is_dir():
            raise TemplateError(f"{override}: not a folder")
        _read_folder(override, found)
    languages = frozenset(language for language, _ in found)
    for language in sorted(languages):
        missing = sorted(k.value for k in NotificationKind if (language, k.value) not in found)
        if missing:
            raise TemplateError(
                f"templates for language {language!r} lack {', '.join(missing)} "
                f"(add {language}/<kind>.txt files)"
            )
    return TemplateSet(templates=found, languages=languages)


@functools.cache
def shipped_templates() -> TemplateSet:
    """The shipped templates (loaded once)."""
    return load_templates()


def shipped_languages() -> frozenset[str]:
    """The languages the shipped templates cover (``en``, ``it``)."""
    return frozenset(p.name for p in SHIPPED_DIR.iterdir() if p.is_dir())
