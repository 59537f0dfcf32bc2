"""What the organisation file holds: validated specs and the ``Organisation``.

``nms.organisation.loader`` reads and checks a file into it; the ``teams``,
``members`` and ``routing`` sections are specs here, other sections (``oncall``,
``escalation``) are what their registered parsers make of them
(``nms.organisation.loader.register_section``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from caseapi.inventory import check_email, shipped_languages
from caseapi.organisation import FACT_VALUES

#: Team and member ids: lower-case letters, digits and ``-`` (a member id is the
#: name part of its staff actor, ``engineer:<id>``).
ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
ID_HELP = "must be 1-64 lower-case letters, digits or - (first a letter or digit)"
#: Validation context keys: the calendar names (``cases.calendars``) and the mail
#: template languages members may have.
CALENDARS_CONTEXT = "calendars"
LANGUAGES_CONTEXT = "languages"


def _context(info: ValidationInfo) -> dict[str, Any]:
    return info.context if isinstance(info.context, dict) else {}


def check_timezone(value: str) -> str:
    """``value`` if it is an IANA time zone name.

    Raises:
        ValueError: It is not.
    """
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value[:60]!r} (an IANA name, e.g. Europe/Rome)"
        ) from None
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class ExpertiseSpec(_Strict):
    """What a team knows: tags matched against cases (services, regions, NTU models,
    case subjects)."""

    services: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()

    @field_validator("subjects")
    @classmethod
    def _subjects(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        known = FACT_VALUES["subject"]
        for subject in value:
            if subject not in known:
                raise ValueError(f"unknown subject {subject!r}: one of {', '.join(sorted(known))}")
        return value


class TeamSpec(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    level: Literal["L1", "L2", "L3", "none"]
    timezone: str
    calendar: str | None = None
    members: tuple[str, ...] = ()
    expertise: ExpertiseSpec = ExpertiseSpec()

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("calendar")
    @classmethod
    def _calendar(cls, value: str | None, info: ValidationInfo) -> str | None:
        known: frozenset[str] = _context(info).get(CALENDARS_CONTEXT) or frozenset()
        if value is not None and value != "24x7" and value not in known:
            names = ", ".join(sorted(known)) or "none configured"
            raise ValueError(f"unknown calendar {value!r}: a name from cases.calendars ({names})")
        return value


class MemberSpec(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    email: str
    timezone: str
    language: str = "en"
    webhook: str | None = Field(default=None, max_length=2000)
    mqtt: bool = False

    @field_validator("email", mode="before")
    @classmethod
    def _email(cls, value: object) -> str:
        if not isinstance(value, str):
            raise ValueError("expected an e-mail address")
        return check_email(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("language")
    @classmethod
    def _language(cls, value: str, info: ValidationInfo) -> str:
        known = _context(info).get(LANGUAGES_CONTEXT) or shipped_languages()
        code = value.lower()
        if code not in known:
            raise ValueError(
                f"unknown language {value!r}: one of {', '.join(sorted(known))} "
                "(a language is a folder of mail templates)"
            )
        return code

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http:// or https:// URL")
        return value


class WhenSpec(_Strict):
    """A rule's conditions: for each fact, the values that match (a value or a list)."""

    source: tuple[str, ...] | None = None
    priority: tuple[str, ...] | None = None
    type: tuple[str, ...] | None = None
    service: tuple[str, ...] | None = None
    region: tuple[str, ...] | None = None
    subject: tuple[str, ...] | None = None
    customer: tuple[str, ...] | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("source", "priority", "type", "subject")
    @classmethod
    def _known(cls, value: tuple[str, ...] | None, info: ValidationInfo) -> tuple[str, ...] | None:
        known = FACT_VALUES[info.field_name or ""]
        for item in value or ():
            if item not in known:
                raise ValueError(
                    f"unknown {info.field_name} {item!r}: one of {', '.join(sorted(known))}"
                )
        if value is not None and not value:
            raise ValueError("an empty list matches nothing: drop the key instead")
        return value

    def conditions(self) -> dict[str, tuple[str, ...]]:
        """The facts this tests and their values."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class RuleSpec(_Strict):
    when: WhenSpec | None = None
    team: str

    @property
    def catch_all(self) -> bool:
        return self.when is None or not self.when.conditions()


@dataclass(frozen=True, slots=True)
class Organisation:
    """A validated organisation file (empty: no organisation)."""

    teams: tuple[TeamSpec, ...] = ()
    members: tuple[MemberSpec, ...] = ()
    routing: tuple[RuleSpec, ...] = ()
    #: Other sections by name, as their registered parsers made them.
    sections: Mapping[str, object] = field(default_factory=dict)
    source: str = ""
