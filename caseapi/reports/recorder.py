"""Writing the outage history from the incident path, in the caller's transaction.

``IncidentService`` calls these as it opens, recurs, upgrades and restores cases, so
an interval and its case are committed together (or not at all):

- an NTU's own P1 (``ntu:<id>:down``) or P2 (``ntu:<id>:degraded``) opens a ``down``
  or ``degraded`` interval of cause ``own`` at the outage start (the first failed
  probe); a P2 upgraded to the P1 ends its ``degraded`` interval where the ``down``
  one starts; a recurrence inside the monitoring window opens a new interval on
  the same case;
- an upstream outage's customer case (``node:<id>:down:customer:<cid>``) opens a
  ``down`` interval of cause ``upstream`` for each affected NTU, from the node's
  outage start;
- restoration ends the case's open intervals at ``restored_at``;
- the detector's status reports (``report_ntu_status``) open a ``no_data`` interval
  when an NTU becomes ``unknown`` (from its last observation) and end it at the
  next observation.

Whether an interval counts as downtime is the customer's contract's call, made
when it is written (``counts``): own outages always; upstream outages unless the
customer's ``attributes.availability_upstream`` is false; degradations only when
``attributes.availability_degraded`` is true; no data never.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.core.bulk import bulk_insert
from caseapi.customers.models import Customer
from caseapi.ntus.models import Ntu
from caseapi.ntus.status import NtuStatusUpdate
from caseapi.reports.availability import OutageCause, OutageKind
from caseapi.reports.models import OutageInterval

UNKNOWN_STATUS = "unknown"


def counts(kind: OutageKind, cause: OutageCause, contract: Mapping[str, Any]) -> bool:
    """Whether an interval of ``kind`` and ``cause`` is downtime under ``contract``.

    Args:
        kind: Down or degraded.
        cause: Own, upstream, maintenance or no data.
        contract: The customer's attributes (contract terms).
    """
    if cause in (OutageCause.MAINTENANCE, OutageCause.NO_DATA):
        return False
    if kind is OutageKind.DEGRADED:
        return contract.get("availability_degraded") is True
    if cause is OutageCause.UPSTREAM:
        return contract.get("availability_upstream") is not False
    return True


async def ensure_open(
    session: AsyncSession,
    *,
    case_id: int,
    case_ref: str,
    customer_id: str | None,
    ntu_ids: Sequence[str],
    kind: OutageKind,
    cause: OutageCause,
    start: datetime,
    service_id: str | None = None,
    site: str | None = None,
) -> None:
    """Open an interval on case ``case_id`` for each NTU of ``ntu_ids`` that has none open.

    Idempotent: calling again with the same case and NTUs adds nothing. The NTU's
    service and site come from the inventory (``service_id`` / ``site`` when the
    NTU is not in it).
    """
    if not ntu_ids:
        return
    open_now = set(
        (
            await session.execute(
                select(OutageInterval.ntu_id).where(
                    OutageInterval.case_id == case_id,
                    OutageInterval.kind == kind.value,
                    OutageInterval.end_at.is_(None),
                )
            )
        ).scalars()
    )
    missing = [ntu for ntu in ntu_ids if ntu not in open_now]
    if not missing:
        return
    contract: Mapping[str, Any] = {}
    if customer_id is not None:
        customer = await session.get(Customer, customer_id)
        contract = customer.attributes if customer is not None else {}
    inventory = {
        row.id: row
        for row in (await session.execute(select(Ntu).where(Ntu.id.in_(missing)))).scalars()
    }
    counted = counts(kind, cause, contract)
    for ntu_id in missing:
        ntu = inventory.get(ntu_id)
        session.add(
            OutageInterval(
                ntu_id=ntu_id,
                customer_id=customer_id,
                service_id=ntu.service_id if ntu is not None else service_id,
                site=ntu.site if ntu is not None else site,
                kind=kind.value,
                cause=cause.value,
                start_at=start,
                end_at=None,
                case_id=case_id,
                case_ref=case_ref,
                counted=counted,
            )
        )
    await session.flush()


@dataclass(frozen=True, slots=True)
class IntervalOpen:
    """One ``ensure_open`` for one NTU, as ``ensure_open_many`` takes them."""

    case_id: int
    case_ref: str
    customer_id: str | None
    ntu_id: str
    kind: OutageKind
    cause: OutageCause
    start: datetime
    service_id: str | None = None
    site: str | None = None


async def ensure_open_many(session: AsyncSession, items: Sequence[IntervalOpen]) -> None:
    """``ensure_open`` for each of ``items``, with the same rules, in a few statements
    (the cases a mass outage opens at once)."""
    if not items:
        return
    case_ids = sorted({item.case_id for item in items})
    open_now: set[tuple[int | None, str, str]] = set()
    for start in range(0, len(case_ids), 500):
        stmt = select(OutageInterval.case_id, OutageInterval.ntu_id, OutageInterval.kind).where(
            OutageInterval.case_id.in_(case_ids[start : start + 500]),
            OutageInterval.end_at.is_(None),
        )
        open_now.update((c, n, k) for c, n, k in (await session.execute(stmt)).all())
    missing = [i for i in items if (i.case_id, i.ntu_id, i.kind.value) not in open_now]
    customer_ids = sorted({i.customer_id for i in missing if i.customer_id is not None})
    ntu_ids = sorted({i.ntu_id for i in missing})
    contracts: dict[str, Mapping[str, Any]] = {}
    inventory: dict[str, Ntu] = {}
    for start in range(0, len(customer_ids), 500):
        stmt_c = select(Customer).where(Customer.id.in_(customer_ids[start : start + 500]))
        contracts.update((c.id, c.attributes) for c in (await session.scalars(stmt_c)).all())
    for start in range(0, len(ntu_ids), 500):
        stmt_n = select(Ntu).where(Ntu.id.in_(ntu_ids[start : start + 500]))
        inventory.update((n.id, n) for n in (await session.scalars(stmt_n)).all())
    added: dict[tuple[int, str, str], OutageInterval] = {}
    for item in missing:
        key = (item.case_id, item.ntu_id, item.kind.value)
        if key in added:
            continue
        contract = contracts.get(item.customer_id, {}) if item.customer_id is not None else {}
        ntu = inventory.get(item.ntu_id)
        added[key] = OutageInterval(
            ntu_id=item.ntu_id,
            customer_id=item.customer_id,
            service_id=ntu.service_id if ntu is not None else item.service_id,
            site=ntu.site if ntu is not None else item.site,
            kind=item.kind.value,
            cause=item.cause.value,
            start_at=item.start,
            end_at=None,
            case_id=item.case_id,
            case_ref=item.case_ref,
            counted=counts(item.kind, item.cause, contract or {}),
        )
    await bulk_insert(session, OutageInterval, list(added.values()))


async def close_case(
    session: AsyncSession, *, case_id: int, at: datetime, kind: OutageKind | None = None
) -> None:
    """End the open intervals of case ``case_id`` (of ``kind`` only, if given) at ``at``.

    An interval never ends before it started: ``at`` earlier than its start ends it
    at its start (a zero-length interval, which counts nothing).
    """
    rows = (
        await session.execute(
            select(OutageInterval).where(
                OutageInterval.case_id == case_id,
                OutageInterval.end_at.is_(None),
                *([OutageInterval.kind == kind.value] if kind is not None else []),
            )
        )
    ).scalars()
    for row in rows:
        row.end_at = max(row.start_at, at)
    await session.flush()


async def close_cases(
    session: AsyncSession, ends: Mapping[int, datetime], *, kind: OutageKind | None = None
) -> None:
    """``close_case`` for each case id of ``ends`` at its time, in a few statements."""
    case_ids = sorted(ends)
    for start in range(0, len(case_ids), 500):
        stmt = select(OutageInterval).where(
            OutageInterval.case_id.in_(case_ids[start : start + 500]),
            OutageInterval.end_at.is_(None),
            *([OutageInterval.kind == kind.value] if kind is not None else []),
        )
        for row in (await session.scalars(stmt)).all():
            assert row.case_id is not None
            row.end_at = max(row.start_at, ends[row.case_id])
    await session.flush()


async def record_statuses(session: AsyncSession, updates: Sequence[NtuStatusUpdate]) -> None:
    """Open and end ``no_data`` intervals from a batch of status reports.

    Reads only the open gaps of the batch's NTUs (500 ids a query, by the
    ``ntu_id`` index), never every open gap: when a whole fleet has no data, every
    NTU has one, and reading 100,000 of them on each report slowed the detector
    until the probes fell behind and no NTU could leave ``unknown``. New gaps are
    inserted in one executemany; the inventory is read only for NTUs starting one.
    """
    latest = {update.ntu_id: update for update in updates}
    ids = sorted(latest)
    open_gaps: dict[str, OutageInterval] = {}
    for start in range(0, len(ids), 500):
        stmt = select(OutageInterval).where(
            OutageInterval.ntu_id.in_(ids[start : start + 500]),
            OutageInterval.cause == OutageCause.NO_DATA.value,
            OutageInterval.end_at.is_(None),
        )
        open_gaps.update((row.ntu_id, row) for row in (await session.scalars(stmt)).all())
    starting = [
        u for u in latest.values() if u.status == UNKNOWN_STATUS and u.ntu_id not in open_gaps
    ]
    for ntu_id, row in open_gaps.items():
        update_ = latest[ntu_id]
        if update_.status == UNKNOWN_STATUS:
            continue
        # The gap ends at the first observation after it.
        end = update_.last_observation_at or update_.since
        row.end_at = max(row.start_at, end)
    added: list[OutageInterval] = []
    for start in range(0, len(starting), 500):
        chunk = starting[start : start + 500]
        stmt_ntus = select(Ntu).where(Ntu.id.in_([u.ntu_id for u in chunk]))
        inventory = {row.id: row for row in (await session.scalars(stmt_ntus)).all()}
        for update_ in chunk:
            ntu = inventory.get(update_.ntu_id)
            if ntu is None:
                continue  # an upstream node (its status shares the table), not an NTU
            added.append(
                OutageInterval(
                    ntu_id=ntu.id,
                    customer_id=ntu.customer_id,
                    service_id=ntu.service_id,
                    site=ntu.site,
                    kind=OutageKind.DOWN.value,
                    cause=OutageCause.NO_DATA.value,
                    # No data since the last observation, not since stale_after later.
                    start_at=update_.last_observation_at or update_.since,
                    end_at=None,
                    case_id=None,
                    case_ref=None,
                    counted=False,
                )
            )
    await bulk_insert(session, OutageInterval, added)
    await session.flush()
