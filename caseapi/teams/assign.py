"""Giving a new case its team: the routing rules in force, applied once at creation.

Called by ``caseapi.cases.store.insert_case`` (the one way a case comes to exist), so
proactive incidents, upstream cases and people's requests (API, mail) all get a
team. A case keeps it: a rule change applies to cases created afterwards.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.cases.models import Case
from caseapi.customers import repository as customer_repository
from caseapi.customers.models import Customer
from caseapi.ntus import repository as ntu_repository
from caseapi.ntus.models import Ntu
from caseapi.teams import repository
from caseapi.teams.routing import RoutingFacts, route


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


async def facts_of(session: AsyncSession, case: Case) -> RoutingFacts:
    """What routing looks at: the case, its NTU's ``service`` / ``region`` attributes
    (the customer's ``region`` otherwise; the case's ``service_id`` when the NTU names
    no ``service``)."""
    ntu = None
    if case.ntu_id is not None:
        row = await ntu_repository.get_ntu(session, ntu_id=case.ntu_id)
        ntu = row.ntu if row is not None else None
    customer = None
    if case.customer_id is not None:
        customer = await customer_repository.get_customer(session, customer_id=case.customer_id)
    return facts_from(case, ntu=ntu, customer=customer)


def facts_from(case: Case, *, ntu: Ntu | None, customer: Customer | None) -> RoutingFacts:
    """``facts_of`` with the case's NTU and customer already at hand (pure)."""
    ntu_attrs: dict[str, Any] = dict(ntu.attributes or {}) if ntu is not None else {}
    customer_attrs: dict[str, Any] = dict(customer.attributes or {}) if customer else {}
    return RoutingFacts(
        source=case.source.value,
        priority=case.priority.value,
        type=case.type.value,
        service=_text(ntu_attrs.get("service")) or case.service_id,
        region=_text(ntu_attrs.get("region")) or _text(customer_attrs.get("region")),
        subject=case.subject.value if case.subject is not None else None,
        customer=case.customer_id,
    )


async def team_for_new_case(session: AsyncSession, case: Case) -> str | None:
    """The team the rules in force give ``case`` (``None``: no organisation loaded)."""
    rules = await repository.routing_rules(session)
    if not rules:
        return None
    return route(rules, await facts_of(session, case))
