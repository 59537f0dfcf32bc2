"""The organisation file: teams, members, routing rules (and on-call, escalation).

YAML (see README "Support organisation")::

    teams:
      - {id: l1-noc, name: L1 NOC, level: L1, timezone: Europe/Rome, members: [alice]}
    members:
      - {id: alice, name: Alice Rossi, email: alice@provider.example, timezone: Europe/Rome}
    routing:
      - {when: {priority: [P1], source: [proactive]}, team: l1-noc}
      - {team: l1-noc}

Read with the inventory's YAML guards (``nms.inventory.loader.parse_yaml``: bounded
size, depth and values, duplicate keys refused, lines kept). Every problem is
reported at once as ``file:line: field: message``; nothing here touches the
database, so a bad file never changes what is stored.

Sections other than ``teams``, ``members`` and ``routing`` are parsed by the parser
registered for them (``register_section``): ``oncall`` and ``escalation`` pass
through as raw mappings until their parser is registered. A parser gets the
section's raw value and the validated teams and members (``SectionInput``) and
appends its problems, formatted by ``SectionInput.problem``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ValidationError

from nms.errors import OrganisationError
from nms.inventory.loader import Lines, YamlProblemError, line_of, parse_yaml, read_text
from nms.organisation.model import (
    CALENDARS_CONTEXT,
    ID_HELP,
    LANGUAGES_CONTEXT,
    MemberSpec,
    Organisation,
    RuleSpec,
    TeamSpec,
)

M = TypeVar("M", bound=BaseModel)

#: The sections this module validates itself, in the order they are checked.
CORE_SECTIONS: Final = ("teams", "members", "routing")


@dataclass(frozen=True, slots=True)
class SectionInput:
    """What a registered section parser gets."""

    name: str
    #: The section's value as written (mappings are ``Lines``: they know their lines).
    value: Any
    source: str
    #: The line of the section's key.
    line: int
    #: The teams, members and routing of the same file, validated.
    organisation: Organisation

    def line_of(self, loc: tuple[int | str, ...]) -> int:
        """The line of ``loc`` inside the section (``(2, "team")``: its third entry's
        ``team``), or the closest enclosing line known."""
        return line_of(self.value, loc) or self.line

    def problem(self, loc: tuple[int | str, ...], message: str) -> str:
        """``file:line: section[2].team: message`` for ``loc`` inside the section."""
        return f"{self.source}:{self.line_of(loc)}: {self.name}{_path(loc)}: {message}"


#: A section parser: returns what ``Organisation.sections[name]`` holds; appends
#: every problem to the list (then the file is refused as a whole).
SectionParser = Callable[[SectionInput, list[str]], object]


def _raw(section: SectionInput, problems: list[str]) -> object:
    # Until its owner registers a parser: kept as written, checked only for shape.
    if not isinstance(section.value, list):
        problems.append(section.problem((), "expected a list"))
    return section.value


_PARSERS: dict[str, SectionParser] = {"oncall": _raw, "escalation": _raw}


def register_section(name: str, parser: SectionParser) -> None:
    """Parse top-level section ``name`` of organisation files with ``parser``."""
    if name in CORE_SECTIONS:
        raise ValueError(f"{name!r} is parsed by nms.organisation.loader itself")
    _PARSERS[name] = parser


def _path(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)


def validate_entries(
    section: str,
    items: object,
    model: type[M],
    *,
    source: str,
    line: int,
    problems: list[str],
    context: Mapping[str, Any] | None = None,
) -> list[tuple[int, int, M]]:
    """Validate each entry of list section ``section`` as ``model``.

    Returns ``(index, line, spec)`` of the valid entries; appends a
    ``file:line: section[i].field (id x): message`` problem for each error.
    """
    if items is None:
        return []
    if not isinstance(items, list):
        problems.append(f"{source}:{line}: {section}: expected a list")
        return []
    valid: list[tuple[int, int, M]] = []
    for index, item in enumerate(items):
        item_line = getattr(item, "line", line)
        where = f"{section}[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{source}:{item_line}: {where}: expected a mapping of fields")
            continue
        try:
            spec = model.model_validate(dict(item), context=dict(context or {}))
        except ValidationError as exc:
            label = item.get("id") if isinstance(item.get("id"), str) else None
            ident = f" (id {label})" if label else ""
            for err in exc.errors():
                loc = tuple(err["loc"])
                at = line_of(item, loc) or item_line
                message = err["msg"].removeprefix("Value error, ")
                if err["type"] == "extra_forbidden":
                    message = "unknown key"
                elif err["type"] == "missing":
                    message = "missing (required)"
                elif err["type"] == "string_pattern_mismatch":
                    message = ID_HELP
                problems.append(f"{source}:{at}: {where}{_path(loc)}{ident}: {message}")
            continue
        valid.append((index, item_line, spec))
    return valid


def parse_organisation(
    text: str,
    *,
    source: str,
    calendars: frozenset[str] = frozenset(),
    languages: frozenset[str] | None = None,
) -> Organisation:
    """Validate an organisation document.

    ``calendars``: the names of ``cases.calendars`` a team may name; ``languages``:
    those members may have (default: the shipped mail templates').

    Raises:
        OrganisationError: listing every problem as ``source:line: field: message``.
    """
    problems: list[str] = []
    try:
        doc = parse_yaml(text, source)
    except YamlProblemError as exc:
        raise OrganisationError([exc.problem]) from None
    expected = "a mapping with 'teams', 'members' and 'routing' lists at the top"
    if doc is None:
        raise OrganisationError([f"{source}:1: empty: expected {expected}"])
    if not isinstance(doc, Lines):
        raise OrganisationError([f"{source}:1: expected {expected}"])
    for key in doc:
        if key not in CORE_SECTIONS and key not in _PARSERS:
            known = ", ".join([*CORE_SECTIONS, *_PARSERS])
            problems.append(f"{source}:{doc.key_lines[key]}: {key}: unknown key (known: {known})")
    context = {CALENDARS_CONTEXT: calendars, LANGUAGES_CONTEXT: languages}

    def entries(name: str, model: type[M]) -> list[tuple[int, int, M]]:
        return validate_entries(
            name,
            doc.get(name),
            model,
            source=source,
            line=doc.key_lines.get(name, doc.line),
            problems=problems,
            context=context,
        )

    teams = entries("teams", TeamSpec)
    members = entries("members", MemberSpec)
    rules = entries("routing", RuleSpec)
    # An entry refused for another field still names its id: no "unknown team"
    # cascade from a team whose time zone is wrong.
    member_ids = _unique("members", members, source, problems) | _raw_ids(doc.get("members"))
    team_ids = _unique("teams", teams, source, problems) | _raw_ids(doc.get("teams"))
    for index, line, team in teams:
        for position, member in enumerate(team.members):
            if member not in member_ids:
                at = line_of(doc["teams"][index], ("members", position)) or line
                problems.append(
                    f"{source}:{at}: teams[{index}].members[{position}] (id {team.id}): "
                    f"unknown member {member!r}"
                )
    _check_routing(doc, rules, team_ids, source, problems)
    organisation = Organisation(
        teams=tuple(t for _, _, t in teams),
        members=tuple(m for _, _, m in members),
        routing=tuple(r for _, _, r in rules),
        source=source,
    )
    sections: dict[str, object] = {}
    for name, parser in _PARSERS.items():
        if name in doc:
            section = SectionInput(name, doc[name], source, doc.key_lines[name], organisation)
            sections[name] = parser(section, problems)
    if problems:
        raise OrganisationError(sorted(problems, key=_problem_line))
    return Organisation(
        teams=organisation.teams,
        members=organisation.members,
        routing=organisation.routing,
        sections=sections,
        source=source,
    )


def _unique(
    section: str, specs: list[tuple[int, int, Any]], source: str, problems: list[str]
) -> set[str]:
    first: dict[str, int] = {}
    for index, line, spec in specs:
        if spec.id in first:
            problems.append(
                f"{source}:{line}: {section}[{index}].id: duplicate id {spec.id!r} "
                f"(first at line {first[spec.id]})"
            )
        first.setdefault(spec.id, line)
    return set(first)


def _raw_ids(items: object) -> set[str]:
    if not isinstance(items, list):
        return set()
    return {i["id"] for i in items if isinstance(i, dict) and isinstance(i.get("id"), str)}


def _check_routing(
    doc: Lines,
    rules: list[tuple[int, int, RuleSpec]],
    team_ids: set[str],
    source: str,
    problems: list[str],
) -> None:
    found = doc.get("routing")
    raw: list[Any] = found if isinstance(found, list) else []
    count = len(raw)
    for index, line, rule in rules:
        if rule.team not in team_ids:
            at = line_of(raw[index], ("team",)) or line
            problems.append(f"{source}:{at}: routing[{index}].team: unknown team {rule.team!r}")
        if rule.catch_all and index < count - 1:
            problems.append(
                f"{source}:{line}: routing[{index}]: matches every case (no `when`), so "
                f"the rules after it (from routing[{index + 1}]) would never apply"
            )
    if doc.get("teams") and not raw:
        line = doc.key_lines.get("routing", doc.line)
        problems.append(
            f"{source}:{line}: routing: missing: every new case needs a team, so list "
            "routing rules ending with a catch-all (a rule without `when`)"
        )
    elif count and rules and rules[-1][0] == count - 1 and not rules[-1][2].catch_all:
        index, line, _ = rules[-1]
        at = line_of(raw[index], ("when",)) or line
        problems.append(
            f"{source}:{at}: routing[{index}].when: the last rule must match every case "
            "(no `when`): a case no rule matches would get no team"
        )


def _problem_line(problem: str) -> int:
    _, _, rest = problem.partition(":")
    number, sep, _ = rest.partition(":")
    return int(number) if sep and number.isdigit() else 0


def load_organisation(
    path: Path, *, calendars: frozenset[str] = frozenset(), languages: frozenset[str] | None = None
) -> Organisation:
    """Read and validate the organisation file ``path``.

    Raises:
        OrganisationError: every problem, with file, line and field.
    """
    try:
        text = read_text(path, "an organisation file")
    except YamlProblemError as exc:
        raise OrganisationError([exc.problem]) from exc
    return parse_organisation(text, source=str(path), calendars=calendars, languages=languages)
