"""Which team a new case goes to: pure, first match wins.

A rule names a team and, optionally, conditions: for each fact it names
(``source``, ``priority``, ``type``, ``service``, ``region``, ``subject``,
``customer``) the values that match. A rule matches a case when every fact it names
has one of its values (a fact the case does not have, ``None``, matches nothing).
A rule with no conditions matches every case; the organisation file must end with
one (``nms`` refuses a file without it), so every case gets exactly one team.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

#: The facts a rule may test, in the order they are documented.
FACTS: Final = ("source", "priority", "type", "service", "region", "subject", "customer")


class NoRouteError(ValueError):
    """No rule matched: the rules have no catch-all (a file ``nms`` would refuse)."""


@dataclass(frozen=True, slots=True)
class RoutingFacts:
    """What routing looks at in a new case (values as stored: ``"P1"``, ``"api"``)."""

    source: str
    priority: str
    type: str
    service: str | None = None
    region: str | None = None
    subject: str | None = None
    customer: str | None = None


@dataclass(frozen=True, slots=True)
class RoutingRule:
    """``team`` takes the cases that match every condition (none: every case)."""

    team: str
    when: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.when) - set(FACTS))
        if unknown:
            raise ValueError(f"unknown routing facts {unknown}; known: {', '.join(FACTS)}")

    @property
    def catch_all(self) -> bool:
        """Whether the rule matches every case."""
        return not self.when

    def matches(self, facts: RoutingFacts) -> bool:
        """Whether every condition holds for ``facts``."""
        for name, values in self.when.items():
            value = getattr(facts, name)
            if value is None or value not in values:
                return False
        return True


def route(rules: Sequence[RoutingRule], facts: RoutingFacts) -> str:
    """The team of the first rule that matches ``facts``.

    Raises:
        NoRouteError: No rule matched (the rules lack a catch-all).
    """
    for rule in rules:
        if rule.matches(facts):
            return rule.team
    raise NoRouteError(f"no routing rule matches {facts}")
