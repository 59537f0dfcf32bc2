"""The ``oncall`` and ``escalation`` sections of the organisation file, validated.

``parse_sections`` takes the already parsed YAML document (mappings may carry the
``line`` / ``key_lines`` of the organisation loader; plain dicts work too) with the
teams and members the file declared, and returns every problem found, each as
``<source>:<line>: <section>[<index>].<field>: <what is wrong>``, plus the model.
Any problem means nothing of the file is used (the caller refuses it whole).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from caseapi.cases.calendar import WEEKDAYS
from caseapi.core.durations import parse_duration
from caseapi.oncall.matrix import (
    CUSTOMER_SEES,
    LEVELS,
    CustomerSees,
    Level,
    LevelContacts,
    MatrixError,
    Tier,
)
from caseapi.oncall.rotation import KINDS, Kind, Override, Rotation, RotationError, parse_handoff

_ONCALL_KEYS: Final = frozenset(
    {"team", "rotation", "handoff", "start", "order", "overrides", "ack_within"}
)
_OVERRIDE_KEYS: Final = frozenset({"member", "from", "to"})
_TIER_KEYS: Final = frozenset({"tier", "levels", "notify_after", "customer_sees"})
_LEVEL_KEYS: Final = frozenset({"team", "contacts", "management"})


@dataclass(frozen=True, slots=True)
class TeamFacts:
    """What the sections need to know of a team declared in the file."""

    timezone: str
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OncallModel:
    """The validated sections: rotations by team, tiers by name."""

    rotations: Mapping[str, Rotation]
    tiers: Mapping[str, Tier]


class _Where:
    """Formats problems with the file, the line and the field path."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems

    def add(self, node: object, key: str | None, path: str, message: str) -> None:
        line = getattr(node, "line", None)
        if key is not None:
            line = getattr(node, "key_lines", {}).get(key, line)
        where = f"{self.source}:{line}" if line is not None else self.source
        self.problems.append(f"{where}: {path}: {message}")


def parse_sections(
    doc: Mapping[str, Any],
    teams: Mapping[str, TeamFacts],
    members: Sequence[str],
    source: str,
) -> tuple[list[str], OncallModel]:
    """Validate ``doc['oncall']`` and ``doc['escalation']`` (both optional).

    Returns:
        The problems (empty when valid) and the model (empty parts where invalid).
    """
    problems: list[str] = []
    where = _Where(source, problems)
    rotations: dict[str, Rotation] = {}
    tiers: dict[str, Tier] = {}
    for index, item in _entries(doc, "oncall", where):
        rotation = _rotation(item, f"oncall[{index}]", teams, where)
        if rotation is None:
            continue
        if rotation.team in rotations:
            where.add(item, "team", f"oncall[{index}].team", f"{rotation.team}: a second rotation")
            continue
        rotations[rotation.team] = rotation
    known_members = set(members)
    for index, item in _entries(doc, "escalation", where):
        tier = _tier(item, f"escalation[{index}]", teams, known_members, where)
        if tier is None:
            continue
        if tier.name in tiers:
            where.add(item, "tier", f"escalation[{index}].tier", f"{tier.name}: a second tier")
            continue
        tiers[tier.name] = tier
    return problems, OncallModel(rotations=rotations, tiers=tiers)


def _entries(doc: Mapping[str, Any], section: str, where: _Where) -> list[tuple[int, Any]]:
    items = doc.get(section)
    if items is None:
        return []
    if not isinstance(items, list):
        where.add(doc, section, section, "expected a list")
        return []
    out: list[tuple[int, Any]] = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            where.add(doc, section, f"{section}[{index}]", "expected a mapping")
            continue
        out.append((index, item))
    return out


def _unknown_keys(
    item: Mapping[str, Any], allowed: frozenset[str], path: str, where: _Where
) -> bool:
    bad = [key for key in item if key not in allowed]
    for key in bad:
        where.add(
            item, key, f"{path}.{key}", f"unknown key (expected: {', '.join(sorted(allowed))})"
        )
    return bool(bad)


def _text(item: Mapping[str, Any], key: str, path: str, where: _Where) -> str | None:
    value = item.get(key)
    if value is None:
        where.add(item, None, f"{path}.{key}", "missing")
        return None
    if not isinstance(value, str) or not value.strip():
        where.add(item, key, f"{path}.{key}", f"expected text, got {value!r}")
        return None
    return value.strip()


def _names(item: Mapping[str, Any], key: str, path: str, where: _Where) -> tuple[str, ...] | None:
    value = item.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        where.add(item, key, f"{path}.{key}", "expected a list of member ids")
        return None
    return tuple(cast(list[str], value))


def _duration(item: Mapping[str, Any], key: str, path: str, where: _Where) -> timedelta | None:
    if item.get(key) is None:
        where.add(item, None, f"{path}.{key}", "missing (a duration such as 10m)")
        return None
    try:
        value = parse_duration(item.get(key))
    except ValueError as exc:
        where.add(item, key, f"{path}.{key}", str(exc))
        return None
    if value <= timedelta(0):
        where.add(item, key, f"{path}.{key}", "must be greater than zero")
        return None
    return value


def _rotation(
    item: Mapping[str, Any], path: str, teams: Mapping[str, TeamFacts], where: _Where
) -> Rotation | None:
    bad = _unknown_keys(item, _ONCALL_KEYS, path, where)
    team_id = _text(item, "team", path, where)
    team = teams.get(team_id) if team_id else None
    if team_id and team is None:
        where.add(item, "team", f"{path}.team", f"{team_id}: no such team in 'teams'")
    kind = item.get("rotation")
    if kind not in KINDS:
        where.add(item, "rotation", f"{path}.rotation", f"{kind!r}: expected weekly or daily")
        kind = None
    handoff_text = _text(item, "handoff", path, where)
    handoff = None
    if kind is not None and handoff_text is not None:
        try:
            handoff = parse_handoff(cast(Kind, kind), handoff_text)
        except RotationError as exc:
            where.add(item, "handoff", f"{path}.handoff", str(exc).removeprefix("handoff: "))
    start = item.get("start")
    if start is None:
        where.add(item, None, f"{path}.start", "missing (a date YYYY-MM-DD)")
    elif isinstance(start, str):
        with contextlib.suppress(ValueError):
            start = date.fromisoformat(start)
    if start is not None and (not isinstance(start, date) or isinstance(start, datetime)):
        where.add(item, "start", f"{path}.start", f"{start!r}: expected a date YYYY-MM-DD")
        start = None
    elif (
        isinstance(start, date)
        and handoff is not None
        and handoff[0] is not None
        and start.weekday() != handoff[0]
    ):
        where.add(
            item,
            "start",
            f"{path}.start",
            f"{start} is a {WEEKDAYS[start.weekday()]}, the handoff is on {WEEKDAYS[handoff[0]]}",
        )
        start = None
    order = _names(item, "order", path, where)
    if "order" not in item:
        where.add(item, None, f"{path}.order", "missing (the members in turn)")
        order = None
    elif order is not None and not order:
        where.add(item, "order", f"{path}.order", "empty (at least one member)")
        order = None
    elif order is not None and team is not None:
        for member in order:
            if member not in team.members:
                where.add(
                    item, "order", f"{path}.order", f"{member}: not a member of team {team_id}"
                )
                order = None
    ack_within = _duration(item, "ack_within", path, where)
    tz = _zone(team, team_id, item, path, where)
    overrides = _overrides(item, path, team, team_id, where)
    if bad or None in (team, kind, handoff, start, order, ack_within, tz, overrides):
        return None
    assert team_id is not None
    assert handoff is not None
    assert order is not None
    assert ack_within is not None
    assert tz is not None
    assert overrides is not None
    try:
        return Rotation(
            team=team_id,
            kind=cast(Kind, kind),
            tz=tz,
            handoff=handoff[1],
            start=cast(date, start),
            order=order,
            ack_within=ack_within,
            overrides=overrides,
        )
    except RotationError as exc:
        field, _, message = str(exc).partition(": ")
        where.add(item, field, f"{path}.{field}", message)
        return None


def _zone(
    team: TeamFacts | None, team_id: str | None, item: Mapping[str, Any], path: str, where: _Where
) -> ZoneInfo | None:
    if team is None:
        return None
    try:
        return ZoneInfo(team.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        where.add(
            item, "team", f"{path}.team", f"team {team_id}: unknown time zone {team.timezone!r}"
        )
        return None


def _overrides(
    item: Mapping[str, Any], path: str, team: TeamFacts | None, team_id: str | None, where: _Where
) -> tuple[Override, ...] | None:
    raw = item.get("overrides", [])
    if not isinstance(raw, list):
        where.add(item, "overrides", f"{path}.overrides", "expected a list")
        return None
    out: list[Override] = []
    ok = True
    for index, entry in enumerate(raw):
        here = f"{path}.overrides[{index}]"
        if not isinstance(entry, Mapping):
            where.add(item, "overrides", here, "expected a mapping with member, from, to")
            ok = False
            continue
        ok &= not _unknown_keys(entry, _OVERRIDE_KEYS, here, where)
        member = _text(entry, "member", here, where)
        if member and team is not None and member not in team.members:
            where.add(
                entry, "member", f"{here}.member", f"{member}: not a member of team {team_id}"
            )
            member = None
        bounds = [_local(entry, key, here, where) for key in ("from", "to")]
        if member is None or bounds[0] is None or bounds[1] is None:
            ok = False
            continue
        if bounds[1] <= bounds[0]:
            where.add(entry, "to", f"{here}.to", "not after 'from'")
            ok = False
            continue
        out.append(Override(member, bounds[0], bounds[1]))
    ordered = sorted(range(len(out)), key=lambda i: out[i].start)
    for a, b in itertools.pairwise(ordered):
        if out[b].start < out[a].end:
            where.add(
                item,
                "overrides",
                f"{path}.overrides",
                f"{_span(out[a])} and {_span(out[b])} overlap",
            )
            ok = False
    return tuple(out) if ok else None


def _span(override: Override) -> str:
    return f"{override.member} {override.start:%Y-%m-%dT%H:%M}..{override.end:%Y-%m-%dT%H:%M}"


def _local(entry: Mapping[str, Any], key: str, path: str, where: _Where) -> datetime | None:
    value = entry.get(key)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = datetime.fromisoformat(value)
    if not isinstance(value, datetime) or value.tzinfo is not None:
        where.add(entry, key, f"{path}.{key}", f"{value!r}: expected a local YYYY-MM-DDTHH:MM")
        return None
    return value


def _tier(
    item: Mapping[str, Any],
    path: str,
    teams: Mapping[str, TeamFacts],
    members: set[str],
    where: _Where,
) -> Tier | None:
    bad = _unknown_keys(item, _TIER_KEYS, path, where)
    name = _text(item, "tier", path, where)
    raw_levels = item.get("levels")
    levels: dict[Level, LevelContacts] = {}
    if not isinstance(raw_levels, Mapping) or not raw_levels:
        where.add(item, "levels", f"{path}.levels", "expected a mapping of L1, L2, L3")
        bad = True
    else:
        for level, spec in raw_levels.items():
            here = f"{path}.levels.{level}"
            if level not in LEVELS:
                where.add(raw_levels, level, here, "unknown level (expected L1, L2 or L3)")
                bad = True
                continue
            contacts = _level(spec, here, teams, members, raw_levels, level, where)
            if contacts is None:
                bad = True
                continue
            levels[cast(Level, level)] = contacts
    notify_after: dict[Level, timedelta] = {}
    raw_after = item.get("notify_after", {})
    if not isinstance(raw_after, Mapping):
        where.add(
            item, "notify_after", f"{path}.notify_after", "expected a mapping level: duration"
        )
        bad = True
    else:
        for level in raw_after:
            if level not in LEVELS:
                where.add(raw_after, level, f"{path}.notify_after.{level}", "unknown level")
                bad = True
                continue
            after = _duration(raw_after, level, f"{path}.notify_after", where)
            if after is None:
                bad = True
                continue
            notify_after[cast(Level, level)] = after
    sees = item.get("customer_sees", "level")
    if sees not in CUSTOMER_SEES:
        where.add(
            item,
            "customer_sees",
            f"{path}.customer_sees",
            f"{sees!r}: expected level or level_and_contact",
        )
        bad = True
    if bad or name is None:
        return None
    try:
        return Tier(name, levels, notify_after, cast(CustomerSees, sees))
    except MatrixError as exc:
        field, _, message = str(exc).partition(": ")
        where.add(item, field, f"{path}.{field}", message)
        return None


def _level(
    spec: object,
    path: str,
    teams: Mapping[str, TeamFacts],
    members: set[str],
    parent: Mapping[str, Any],
    key: str,
    where: _Where,
) -> LevelContacts | None:
    if not isinstance(spec, Mapping):
        where.add(parent, key, path, "expected a mapping with team, contacts, management")
        return None
    ok = not _unknown_keys(spec, _LEVEL_KEYS, path, where)
    team = _text(spec, "team", path, where)
    if team is not None and team not in teams:
        where.add(spec, "team", f"{path}.team", f"{team}: no such team in 'teams'")
        ok = False
    lists: list[tuple[str, ...]] = []
    for field in ("contacts", "management"):
        names = _names(spec, field, path, where)
        if names is None:
            ok = False
            names = ()
        for name in names:
            if name not in members:
                where.add(spec, field, f"{path}.{field}", f"{name}: no such member in 'members'")
                ok = False
        lists.append(names)
    if not ok or team is None:
        return None
    return LevelContacts(team=team, contacts=lists[0], management=lists[1])
