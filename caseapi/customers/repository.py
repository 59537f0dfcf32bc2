"""Read-side SQL for customers (keyword-only arguments; callers own the session)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.customers.models import Customer


async def get_customer(session: AsyncSession, *, customer_id: str) -> Customer | None:
    """Return the customer ``customer_id``, if the inventory has it."""
    return await session.get(Customer, customer_id)


async def get_customers(
    session: AsyncSession, *, customer_ids: Collection[str]
) -> dict[str, Customer]:
    """The customers of ``customer_ids`` that the inventory has, by id (one query per
    500 ids); later ``get_customer`` calls find them in the session without a query."""
    wanted = sorted(set(customer_ids))
    found: dict[str, Customer] = {}
    for start in range(0, len(wanted), 500):
        stmt = select(Customer).where(Customer.id.in_(wanted[start : start + 500]))
        found.update((row.id, row) for row in (await session.scalars(stmt)).all())
    return found
