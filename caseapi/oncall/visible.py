"""What a customer is shown of the escalation matrix on their case.

The level the case is at, always; the name of that level's first named contact only
when the customer's tier says ``customer_sees: level_and_contact``. A level that
names nobody shows no contact: its team's name and on-call person are internal.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.cases.models import Case
from caseapi.customers.models import Customer
from caseapi.oncall.cached import TiersCache
from caseapi.oncall.matrix import Level, tier_for
from caseapi.teams.repository import member_by_id


@dataclass(frozen=True, slots=True)
class EscalationShown:
    level: str
    #: The person the customer may ask for at this level (``None``: not shown).
    contact: str | None = None


async def escalation_shown(
    session: AsyncSession, case: Case, tiers_cache: TiersCache
) -> EscalationShown:
    """The customer's view of ``case``'s escalation (its level; the contact if allowed);
    the stored tiers come from ``tiers_cache`` (read through ``session`` when stale)."""
    level = str(case.escalation_level)
    tiers = await tiers_cache.get(session)
    if not tiers:
        return EscalationShown(level=level)
    customer = await session.get(Customer, case.customer_id) if case.customer_id else None
    tier = tier_for(tiers, (customer.attributes or {}).get("tier") if customer else None)
    if tier is None or tier.customer_sees != "level_and_contact":
        return EscalationShown(level=level)
    spec = tier.levels.get(_level(level))
    for member_id in spec.contacts if spec is not None else ():
        member = await member_by_id(session, member_id)
        if member is not None:
            view = tier.customer_view(_level(level), member.name)
            return EscalationShown(level=level, contact=view.get("contact"))
    return EscalationShown(level=level)


def _level(text: str) -> Level:
    if text == "L2":
        return "L2"
    if text == "L3":
        return "L3"
    return "L1"
