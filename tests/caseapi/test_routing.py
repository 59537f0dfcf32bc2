"""Routing: which team a new case goes to (pure, first match wins)."""

from __future__ import annotations

from typing import Final

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caseapi.teams.routing import FACTS, NoRouteError, RoutingFacts, RoutingRule, route


def rule(team: str, **when: list[str]) -> RoutingRule:
    return RoutingRule(team=team, when={k: frozenset(v) for k, v in when.items()})


#: The example organisation's rules (examples/organisation.yaml) plus a few more.
RULES: Final = (
    rule("field-dispatch", subject=["engineer_dispatch"]),
    rule("account-management", subject=["rfo_request", "information_request"]),
    rule("l3-core", source=["proactive"], region=["core"]),
    rule("l2-access", priority=["P1"], service=["internet"], region=["north", "south"]),
    rule("vip-desk", customer=["acme"], type=["incident"]),
    rule("l1-noc"),
)


def facts(
    source: str = "api",
    priority: str = "P2",
    type: str = "incident",
    service: str | None = None,
    region: str | None = None,
    subject: str | None = None,
    customer: str | None = "other",
) -> RoutingFacts:
    return RoutingFacts(source, priority, type, service, region, subject, customer)


TABLE: Final = [
    (facts(type="general_request", priority="P3", subject="engineer_dispatch"), "field-dispatch"),
    (facts(type="general_request", priority="P3", subject="rfo_request"), "account-management"),
    (facts(type="general_request", priority="P3", subject="other"), "l1-noc"),
    (facts(source="proactive", priority="P1", region="core"), "l3-core"),
    (facts(source="api", priority="P1", region="core"), "l1-noc"),  # not proactive
    (facts(source="proactive", priority="P1", service="internet", region="north"), "l2-access"),
    (facts(source="email", priority="P1", service="internet", region="south"), "l2-access"),
    (facts(priority="P2", service="internet", region="north"), "l1-noc"),  # not P1
    (facts(priority="P1", service="sdwan", region="north"), "l1-noc"),  # other service
    (facts(priority="P1", service="internet", region=None), "l1-noc"),  # no region: no match
    (facts(customer="acme"), "vip-desk"),
    (facts(customer="acme", type="general_request", subject="other"), "l1-noc"),
    # First match wins: a dispatch request of acme goes to field dispatch.
    (facts(customer="acme", type="general_request", subject="engineer_dispatch"), "field-dispatch"),
    (facts(source="phone", customer=None), "l1-noc"),
]


@pytest.mark.parametrize(("case", "team"), TABLE)
def test_routing_table(case: RoutingFacts, team: str) -> None:
    assert route(RULES, case) == team


def test_no_rule_matches_without_a_catch_all() -> None:
    with pytest.raises(NoRouteError):
        route(RULES[:-1], facts())
    with pytest.raises(NoRouteError):
        route((), facts())


def test_an_unknown_fact_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown routing facts"):
        RoutingRule(team="x", when={"colour": frozenset({"red"})})


# -- properties ---------------------------------------------------------------------------

VALUES: Final = {
    "source": ["proactive", "api", "email", "phone"],
    "priority": ["P1", "P2", "P3"],
    "type": ["incident", "general_request"],
    "service": ["internet", "sdwan", "voice"],
    "region": ["north", "south", "core"],
    "subject": ["other", "rfo_request", "engineer_dispatch"],
    "customer": ["acme", "globex"],
}
TEAMS: Final = ["a", "b", "c", "d"]

any_facts = st.builds(
    RoutingFacts,
    source=st.sampled_from(VALUES["source"]),
    priority=st.sampled_from(VALUES["priority"]),
    type=st.sampled_from(VALUES["type"]),
    service=st.none() | st.sampled_from(VALUES["service"]),
    region=st.none() | st.sampled_from(VALUES["region"]),
    subject=st.none() | st.sampled_from(VALUES["subject"]),
    customer=st.none() | st.sampled_from(VALUES["customer"]),
)


@st.composite
def conditional_rule(draw: st.DrawFn) -> RoutingRule:
    names = draw(st.lists(st.sampled_from(FACTS), min_size=1, max_size=3, unique=True))
    when = {
        name: frozenset(draw(st.lists(st.sampled_from(VALUES[name]), min_size=1, max_size=2)))
        for name in names
    }
    return RoutingRule(team=draw(st.sampled_from(TEAMS)), when=when)


#: Rules as the organisation file allows them: any conditional rules, then a catch-all.
valid_rules = st.builds(
    lambda rules, last: (*rules, RoutingRule(team=last)),
    st.lists(conditional_rule(), max_size=6),
    st.sampled_from(TEAMS),
)


def reference(rules: tuple[RoutingRule, ...], case: RoutingFacts) -> list[str]:
    """Every rule's verdict, written out from the definition (not from ``matches``)."""
    hits = []
    for item in rules:
        if all(
            getattr(case, name) is not None and getattr(case, name) in values
            for name, values in item.when.items()
        ):
            hits.append(item.team)
    return hits


@settings(max_examples=150, deadline=None)
@given(rules=valid_rules, case=any_facts)
def test_every_case_gets_exactly_one_team_the_first_match(
    rules: tuple[RoutingRule, ...], case: RoutingFacts
) -> None:
    team = route(rules, case)
    hits = reference(rules, case)
    assert hits, "the catch-all always matches"
    assert team == hits[0]
    assert team in TEAMS
    # Pure: the same facts give the same team, whatever was routed before.
    assert route(rules, case) == team


@settings(max_examples=100, deadline=None)
@given(rules=valid_rules, change=conditional_rule(), cases=st.lists(any_facts, max_size=8))
def test_a_new_first_rule_only_changes_the_cases_it_matches(
    rules: tuple[RoutingRule, ...], change: RoutingRule, cases: list[RoutingFacts]
) -> None:
    changed = (change, *rules)
    for case in cases:
        if change.matches(case):
            assert route(changed, case) == change.team
        else:
            assert route(changed, case) == route(rules, case)
