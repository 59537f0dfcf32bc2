"""The organisation file: validation (file/line/field), sync, reload, CLI."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select

from caseapi.teams.models import Member, RoutingRuleRow, Team, TeamMember
from nms.app.cli import main
from nms.app.detector_service import OrganisationReloader
from nms.app.settings import Settings
from nms.clock import FakeClock
from nms.errors import OrganisationError
from nms.organisation.loader import (
    SectionInput,
    load_organisation,
    parse_organisation,
    register_section,
)
from nms.organisation.sync import sync_organisation
from tests.caseapi.conftest import Database

EXAMPLE = Path(__file__).parents[3] / "examples" / "organisation.yaml"

GOOD = textwrap.dedent(
    """\
    teams:
      - id: l1-noc
        name: L1 NOC
        level: L1
        timezone: Europe/Rome
        calendar: office
        members: [alice, bob]
        expertise: {services: [internet], subjects: [other]}
      - id: l3-core
        name: L3 core
        level: L3
        timezone: Europe/London
        members: [bob]
    members:
      - {id: alice, name: Alice, email: alice@provider.example, timezone: Europe/Rome, language: it}
      - {id: bob, name: Bob, email: bob@provider.example, timezone: UTC, mqtt: true}
    routing:
      - when: {priority: [P1], source: proactive}
        team: l3-core
      - team: l1-noc
    """
)


def parse(text: str) -> object:
    return parse_organisation(text, source="org.yaml", calendars=frozenset({"office"}))


def test_the_example_is_valid() -> None:
    organisation = load_organisation(EXAMPLE)
    assert [t.id for t in organisation.teams] == [
        "l1-noc",
        "l2-access",
        "l3-core",
        "field-dispatch",
        "account-management",
    ]
    assert organisation.routing[-1].catch_all


def test_a_good_file() -> None:
    organisation = parse_organisation(GOOD, source="org.yaml", calendars=frozenset({"office"}))
    assert organisation.teams[0].members == ("alice", "bob")
    assert organisation.members[0].language == "it"
    assert organisation.routing[0].when is not None
    assert organisation.routing[0].when.conditions() == {
        "priority": ("P1",),
        "source": ("proactive",),
    }


BAD = [
    pytest.param(
        ("team: l1-noc\n", "team: nope\n", 1),
        "org.yaml:20: routing[1].team: unknown team 'nope'",
        id="unknown-team-in-rule",
    ),
    pytest.param(
        ("timezone: Europe/Rome\n", "timezone: Europe/Nowhere\n", 1),
        "org.yaml:5: teams[0].timezone (id l1-noc): unknown time zone 'Europe/Nowhere'",
        id="unknown-team-timezone",
    ),
    pytest.param(
        ("timezone: UTC, mqtt", "timezone: Mars/Base, mqtt", 1),
        "org.yaml:16: members[1].timezone (id bob): unknown time zone 'Mars/Base'",
        id="unknown-member-timezone",
    ),
    pytest.param(
        ("calendar: office", "calendar: night", 1),
        "org.yaml:6: teams[0].calendar (id l1-noc): unknown calendar 'night'",
        id="unknown-calendar",
    ),
    pytest.param(
        ("level: L3", "level: L4", 1),
        "org.yaml:11: teams[1].level (id l3-core): Input should be 'L1', 'L2', 'L3' or 'none'",
        id="bad-level",
    ),
    pytest.param(
        ("members: [bob]", "members: [bob, zed]", 1),
        "org.yaml:13: teams[1].members[1] (id l3-core): unknown member 'zed'",
        id="unknown-member",
    ),
    pytest.param(
        ("id: l3-core", "id: l1-noc", 1),
        "org.yaml:9: teams[1].id: duplicate id 'l1-noc' (first at line 2)",
        id="duplicate-team",
    ),
    pytest.param(
        ("{id: bob,", "{id: alice,", 1),
        "org.yaml:16: members[1].id: duplicate id 'alice' (first at line 15)",
        id="duplicate-member",
    ),
    pytest.param(
        ("  - team: l1-noc\n", "  - {when: {type: incident}, team: l1-noc}\n", 1),
        "org.yaml:20: routing[1].when: the last rule must match every case",
        id="no-catch-all",
    ),
    pytest.param(
        (
            "  - when: {priority: [P1], source: proactive}\n    team: l3-core\n",
            "  - team: l3-core\n",
            1,
        ),
        "org.yaml:18: routing[0]: matches every case (no `when`), so the rules after it",
        id="catch-all-not-last",
    ),
    pytest.param(
        ("priority: [P1]", "priority: [P0]", 1),
        "org.yaml:18: routing[0].when.priority: unknown priority 'P0'",
        id="unknown-priority",
    ),
    pytest.param(
        ("priority: [P1]", "colour: [red]", 1),
        "org.yaml:18: routing[0].when.colour: unknown key",
        id="unknown-fact",
    ),
    pytest.param(
        ("subjects: [other]", "subjects: [gossip]", 1),
        "org.yaml:8: teams[0].expertise.subjects (id l1-noc): unknown subject 'gossip'",
        id="unknown-subject",
    ),
    pytest.param(
        ("id: l3-core", "id: L3_Core", 1),
        "org.yaml:9: teams[1].id (id L3_Core): must be 1-64 lower-case letters",
        id="bad-id",
    ),
    pytest.param(
        ("email: bob@provider.example", "email: not-an-address", 1),
        "org.yaml:16: members[1].email (id bob):",
        id="bad-email",
    ),
    pytest.param(
        ("language: it", "language: xx", 1),
        "org.yaml:15: members[0].language (id alice): unknown language 'xx'",
        id="bad-language",
    ),
    pytest.param(
        ("routing:\n", "rooting:\n", 1),
        "org.yaml:17: rooting: unknown key",
        id="unknown-section",
    ),
    pytest.param(
        ("    level: L1\n", "    level: L1\n    level: L2\n", 1),
        "org.yaml:5: not valid YAML: duplicate key 'level'",
        id="duplicate-key",
    ),
]


@pytest.mark.parametrize(("edit", "expected"), BAD)
def test_every_bad_input_names_file_line_field(edit: tuple[str, str, int], expected: str) -> None:
    old, new, count = edit
    assert old in GOOD
    with pytest.raises(OrganisationError) as info:
        parse(GOOD.replace(old, new, count))
    assert any(p.startswith(expected) for p in info.value.problems), info.value.problems


def test_teams_without_routing() -> None:
    text = GOOD[: GOOD.index("routing:")]
    with pytest.raises(OrganisationError) as info:
        parse(text)
    assert info.value.problems == [
        "org.yaml:1: routing: missing: every new case needs a team, so list routing rules "
        "ending with a catch-all (a rule without `when`)"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "org.yaml:1: empty: expected a mapping"),
        ("- a\n", "org.yaml:1: expected a mapping"),
        ("teams: {}\n", "org.yaml:1: teams: expected a list"),
        ("teams: [\n", "org.yaml:2: not valid YAML"),
    ],
)
def test_bad_documents(text: str, expected: str) -> None:
    with pytest.raises(OrganisationError) as info:
        parse(text)
    assert info.value.problems[0].startswith(expected), info.value.problems


def test_every_problem_at_once_top_to_bottom() -> None:
    text = GOOD.replace("Europe/London", "Nowhere").replace("team: l1-noc", "team: gone")
    with pytest.raises(OrganisationError) as info:
        parse(text)
    assert [p.split(":")[1] for p in info.value.problems] == ["12", "20"]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(OrganisationError) as info:
        load_organisation(tmp_path / "missing.yaml")
    assert "missing.yaml: cannot read" in info.value.problems[0]


def test_oncall_and_escalation_are_parsed_with_the_teams_of_the_file() -> None:
    text = GOOD + textwrap.dedent(
        """\
        oncall:
          - {team: l1-noc, rotation: weekly, handoff: "mon 09:00", start: 2026-11-02,
             order: [alice, bob], ack_within: 10m}
        escalation:
          - tier: gold
            levels: {L1: {team: l1-noc}, L3: {team: l3-core, contacts: [bob]}}
            notify_after: {L3: 4h}
        """
    )
    organisation = parse_organisation(text, source="org.yaml", calendars=frozenset({"office"}))
    oncall = organisation.sections["oncall"]
    assert list(oncall.rotations) == ["l1-noc"]  # type: ignore[attr-defined]
    assert organisation.sections["escalation"].tiers["gold"].recipients("L3") == ("bob",)  # type: ignore[attr-defined]
    with pytest.raises(OrganisationError) as info:
        parse(GOOD + "oncall:\n  - {team: l1-noc, rotation: weekly}\n")
    assert info.value.problems == [
        "org.yaml:22: oncall[0].handoff: missing",
        "org.yaml:22: oncall[0].start: missing (a date YYYY-MM-DD)",
        "org.yaml:22: oncall[0].order: missing (the members in turn)",
        "org.yaml:22: oncall[0].ack_within: missing (a duration such as 10m)",
    ]
    with pytest.raises(OrganisationError) as info:
        parse(GOOD + "escalation: {tier: gold}\n")
    assert info.value.problems == ["org.yaml:21: escalation: expected a list"]
    bad = GOOD + textwrap.dedent(
        """\
        oncall:
          - team: l1-noc
            rotation: daily
            handoff: "09:00"
            start: 2026-11-02
            order: [alice, carol]
            ack_within: 10m
            overrides:
              - {member: bob, from: "2026-12-24T18:00", to: "2026-12-27T09:00"}
              - {member: alice, from: "2026-12-26T00:00", to: "2026-12-28T00:00"}
        """
    )
    with pytest.raises(OrganisationError) as info:
        parse(bad)
    assert info.value.problems == [
        "org.yaml:26: oncall[0].order: carol: not a member of team l1-noc",
        "org.yaml:28: oncall[0].overrides: bob 2026-12-24T18:00..2026-12-27T09:00 and "
        "alice 2026-12-26T00:00..2026-12-28T00:00 overlap",
    ]


def test_a_registered_parser_sees_the_teams_and_reports_with_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nms.organisation import loader

    def oncall(section: SectionInput, problems: list[str]) -> object:
        teams = {t.id for t in section.organisation.teams}
        for index, entry in enumerate(section.value):
            if entry["team"] not in teams:
                problems.append(section.problem((index, "team"), "unknown team"))
        return len(section.value)

    monkeypatch.setattr(loader, "_PARSERS", dict(loader._PARSERS))
    register_section("oncall", oncall)
    text = GOOD + "oncall:\n  - team: l1-noc\n  - team: nope\n"
    with pytest.raises(OrganisationError) as info:
        parse(text)
    assert info.value.problems == ["org.yaml:23: oncall[1].team: unknown team"]
    with pytest.raises(ValueError, match="parsed by"):
        register_section("teams", oncall)


# -- sync, reload, CLI ------------------------------------------------------------------


async def stored(database: Database) -> dict[str, object]:
    async with database.sessionmaker() as session:
        teams = (await session.scalars(select(Team).order_by(Team.id))).all()
        members = (await session.scalars(select(Member).order_by(Member.id))).all()
        links = (await session.execute(select(TeamMember.team_id, TeamMember.member_id))).all()
        rules = (
            await session.scalars(select(RoutingRuleRow).order_by(RoutingRuleRow.position))
        ).all()
        return {
            "teams": [(t.id, t.level, t.active) for t in teams],
            "members": [(m.id, m.language, m.mqtt, m.active) for m in members],
            "links": sorted(tuple(link) for link in links),
            "rules": [(r.team_id, r.conditions) for r in rules],
        }


async def test_sync_round_trip_and_a_removed_team_is_kept_inactive(database: Database) -> None:
    organisation = parse_organisation(GOOD, source="org.yaml", calendars=frozenset({"office"}))
    diff = await sync_organisation(database.sessionmaker, organisation)
    assert diff.teams_added == ("l1-noc", "l3-core")
    assert await stored(database) == {
        "teams": [("l1-noc", "L1", True), ("l3-core", "L3", True)],
        "members": [("alice", "it", False, True), ("bob", "en", True, True)],
        "links": [("l1-noc", "alice"), ("l1-noc", "bob"), ("l3-core", "bob")],
        "rules": [
            ("l3-core", {"priority": ["P1"], "source": ["proactive"]}),
            ("l1-noc", {}),
        ],
    }
    smaller = GOOD.replace("members: [alice, bob]", "members: [bob]")
    smaller = smaller[: smaller.index("  - id: l3-core")] + smaller[smaller.index("members:\n") :]
    smaller = smaller.replace(
        "  - when: {priority: [P1], source: proactive}\n    team: l3-core\n", ""
    )
    diff = await sync_organisation(database.sessionmaker, parse(smaller))  # type: ignore[arg-type]
    assert diff.teams_removed == ("l3-core",)
    after = await stored(database)
    assert after["teams"] == [("l1-noc", "L1", True), ("l3-core", "L3", False)]
    assert after["links"] == [("l1-noc", "bob")]
    assert after["rules"] == [("l1-noc", {})]


async def test_reload_refuses_a_bad_file_and_keeps_the_stored_one(
    database: Database, tmp_path: Path
) -> None:
    path = tmp_path / "org.yaml"
    path.write_text(GOOD.replace("    calendar: office\n", ""))
    settings = Settings(organisation={"file": path})
    stores: list[int] = []  # the case service's tiers cache is told after each store
    reloader = OrganisationReloader(
        settings=settings,
        path=path,
        sessionmaker=database.sessionmaker,
        clock=FakeClock(),
        on_change=lambda: stores.append(len(stores)),
    )
    assert await reloader.reload()
    assert stores == [0]
    before = await stored(database)
    path.write_text(
        GOOD.replace("    calendar: office\n", "").replace("team: l1-noc", "team: gone")
    )
    assert not await reloader.reload()
    assert await stored(database) == before
    assert stores == [0]  # nothing stored, nothing to forget
    path.write_text(GOOD.replace("    calendar: office\n", "").replace("level: L3", "level: L2"))
    assert await reloader.reload()
    assert stores == [0, 1]
    assert ("l3-core", "L2", True) in (await stored(database))["teams"]  # type: ignore[operator]


def test_cli_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["organisation", "check", str(EXAMPLE)]) == 0
    assert "valid: 5 teams, 5 members, 4 routing rules" in capsys.readouterr().out
    bad = tmp_path / "org.yaml"
    bad.write_text(GOOD.replace("team: l1-noc", "team: gone"))
    assert main(["organisation", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:6: teams[0].calendar (id l1-noc): unknown calendar 'office'" in err
    assert f"{bad}:20: routing[1].team: unknown team 'gone'" in err
    config = tmp_path / "nms.yaml"
    config.write_text(
        "cases:\n  calendars:\n    office: {timezone: Europe/Rome, hours: {mon: ['09:00-18:00']}}\n"
    )
    assert main(["organisation", "check", str(bad), "--config", str(config)]) == 2
    assert "calendar" not in capsys.readouterr().err


def test_nms_run_refuses_to_start_on_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "org.yaml"
    bad.write_text(
        GOOD.replace("    calendar: office\n", "").replace("timezone: UTC", "timezone: X")
    )
    config = tmp_path / "nms.yaml"
    config.write_text(
        f"organisation:\n  file: {bad}\ndatabase:\n  url: sqlite+aiosqlite:///{tmp_path}/n.db\n"
    )
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "invalid organisation file, not started" in err
    assert f"{bad}:15: members[1].timezone (id bob): unknown time zone 'X'" in err
    assert not (tmp_path / "n.db").exists()


async def test_sync_stores_oncall_and_a_file_without_it_empties_it(database: Database) -> None:
    from caseapi.oncall.models import EscalationTierRow, OncallOverrideRow, OncallRotationRow

    text = GOOD + textwrap.dedent(
        """\
        oncall:
          - {team: l1-noc, rotation: daily, handoff: "08:00", start: 2026-11-02,
             order: [bob, alice], ack_within: 5m,
             overrides: [{member: alice, from: "2026-12-24T18:00", to: "2026-12-25T09:00"}]}
        escalation:
          - {tier: standard, levels: {L1: {team: l1-noc}, L3: {team: l3-core}}}
        """
    )
    await sync_organisation(database.sessionmaker, parse(text))  # type: ignore[arg-type]

    async def counts() -> tuple[int, int, int]:
        async with database.sessionmaker() as session:
            return (
                len((await session.scalars(select(OncallRotationRow))).all()),
                len((await session.scalars(select(OncallOverrideRow))).all()),
                len((await session.scalars(select(EscalationTierRow))).all()),
            )

    assert await counts() == (1, 1, 1)
    await sync_organisation(database.sessionmaker, parse(GOOD))  # type: ignore[arg-type]
    assert await counts() == (0, 0, 0)
