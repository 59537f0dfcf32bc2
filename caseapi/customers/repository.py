"""Read-side SQL for customers (keyword-only arguments; callers own the session)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.customers.models import Customer


async def get_customer(session: AsyncSession, *, customer_id: str) -> Customer | None:
    """Return the customer ``customer_id``, if the inventory has it."""
    return await session.get(Customer, customer_id)
