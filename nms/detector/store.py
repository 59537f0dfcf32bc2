"""Durable detector state and the inventory in the database.

The detector's in-memory state is the working copy; every change is written here in
the same cycle, so a restart (even ``kill -9``) resumes every NTU where it was and
loses no timer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.cases.enums import WORKING_STATUSES
from caseapi.cases.models import Case
from caseapi.ntus.models import Customer, Node, Ntu
from caseapi.ntus.models import NtuState as NtuStateRow
from nms.detector.availability import NtuState, Status
from nms.inventory.loader import Inventory, NtuSpec


@dataclass(frozen=True, slots=True)
class InventoryDiff:
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def summary(self) -> str:
        return f"{len(self.added)} added, {len(self.removed)} removed, {len(self.changed)} changed"


@dataclass(slots=True)
class SnmpView:
    """What SNMP says about an NTU beyond up/down; kept with its state."""

    icmp_filtered: bool = False
    wan_if_index: int | None = None
    wan_oper_status: int | None = None
    wan_admin_status: int | None = None
    in_bps: float | None = None
    out_bps: float | None = None
    error_rate: float | None = None
    sys_uptime: int | None = None
    last_reboot_at: datetime | None = None
    reboots: int = 0


_SNMP_FIELDS = tuple(f.name for f in fields(SnmpView))


@dataclass(frozen=True, slots=True)
class StoredState:
    state: NtuState
    case_ref: str | None
    case_pending: bool = False
    """The outage is confirmed but its case could not be opened yet (retried)."""
    degraded_case_ref: str | None = None
    degraded_reasons: str | None = None
    snmp: SnmpView | None = None


@dataclass(frozen=True, slots=True)
class LastProbe:
    """The latest burst's figures, kept beside the state for the API and metrics."""

    rtt_avg: float | None
    loss: float | None
    jitter: float | None


def _ntu_row(spec: NtuSpec) -> dict[str, Any]:
    probe: dict[str, Any] = spec.probe.model_dump()
    if spec.snmp is not None:
        # Never the community or the v3 keys: the database is read by the API.
        probe["snmp"] = spec.snmp.model_dump(
            mode="json", exclude={"community", "auth_key", "priv_key"}
        )
    return {
        "id": spec.id,
        "customer_id": spec.customer,
        "service_id": spec.service_id,
        "site": spec.site,
        "address": str(spec.address),
        "parent": spec.parent,
        "probe": probe,
        "attributes": dict(spec.attributes),
    }


async def _upsert(
    session: AsyncSession, table: Any, rows: list[dict[str, Any]], keys: list[str]
) -> None:
    """INSERT ... ON CONFLICT DO UPDATE for rows of one shape.

    One statement executed with many parameter sets: SQLAlchemy compiles it once (and
    caches it), where a multi-row VALUES list would be compiled anew for every batch -
    that compilation was most of the detector's cost per cycle.
    """
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(table)
    update = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
    await session.execute(stmt.on_conflict_do_update(index_elements=keys, set_=update), rows)


async def apply_inventory(
    sessionmaker: async_sessionmaker[AsyncSession], inventory: Inventory
) -> InventoryDiff:
    """Make the stored customers and NTUs match ``inventory``, in one transaction.

    NTU states and cases are left alone: an NTU that leaves and comes back keeps
    its history. Customers are added and updated, never deleted (cases refer to
    them).
    """
    async with sessionmaker() as session, session.begin():
        existing = {row.id: row for row in (await session.scalars(select(Ntu))).all()}
        wanted = {spec.id: _ntu_row(spec) for spec in inventory.ntus}
        added = tuple(sorted(set(wanted) - set(existing)))
        removed = tuple(sorted(set(existing) - set(wanted)))
        changed = tuple(
            sorted(
                ntu_id
                for ntu_id in set(wanted) & set(existing)
                if any(getattr(existing[ntu_id], k) != v for k, v in wanted[ntu_id].items())
            )
        )
        if inventory.customers:
            rows = [
                {
                    "id": c.id,
                    "name": c.name,
                    "contract_status": c.contract_status,
                    "attributes": dict(c.attributes),
                }
                for c in inventory.customers
            ]
            await _upsert(session, Customer, rows, ["id"])
        if removed:
            await session.execute(delete(Ntu).where(Ntu.id.in_(removed)))
        # Addresses are unique: clear the old rows of changed NTUs first, so that two
        # NTUs swapping addresses in one edit do not trip the constraint.
        if changed:
            await session.execute(delete(Ntu).where(Ntu.id.in_(changed)))
        fresh = [wanted[i] for i in (*added, *changed)]
        await _upsert(session, Ntu, fresh, ["id"])
        nodes = [
            {
                "id": n.id,
                "kind": n.kind,
                "address": str(n.address),
                "parent": n.parent,
                "site": n.site,
            }
            for n in inventory.nodes
        ]
        await session.execute(delete(Node).where(Node.id.not_in([n["id"] for n in nodes])))
        await _upsert(session, Node, nodes, ["id"])
    return InventoryDiff(added=added, removed=removed, changed=changed)


async def load_states(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, StoredState]:
    async with sessionmaker() as session:
        rows = (await session.scalars(select(NtuStateRow))).all()
    return {
        row.ntu_id: StoredState(
            state=NtuState(
                status=Status(row.status),
                since=row.since,
                outage_start=row.outage_start,
                confirm_from=row.confirm_from,
                first_good_at=row.first_good_at,
                good_streak=row.good_streak,
                last_observation_at=row.last_observation_at,
                last_success_at=row.last_success_at,
                case_open=row.case_ref is not None or row.case_pending,
            ),
            case_ref=row.case_ref,
            case_pending=row.case_pending,
            degraded_case_ref=row.degraded_case_ref,
            degraded_reasons=row.degraded_reasons,
            snmp=SnmpView(**{name: getattr(row, name) for name in _SNMP_FIELDS}),
        )
        for row in rows
    }


async def save_states(
    sessionmaker: async_sessionmaker[AsyncSession],
    states: Iterable[tuple[str, StoredState, LastProbe | None]],
) -> None:
    """Upsert the given NTU states in one transaction."""
    rows = []
    for ntu_id, stored, probe in states:
        s = stored.state
        row: dict[str, Any] = {
            "ntu_id": ntu_id,
            "status": s.status.value,
            "since": s.since,
            "outage_start": s.outage_start,
            "confirm_from": s.confirm_from,
            "first_good_at": s.first_good_at,
            "good_streak": s.good_streak,
            "last_observation_at": s.last_observation_at,
            "last_success_at": s.last_success_at,
            "case_ref": stored.case_ref,
            "case_pending": stored.case_pending,
            "degraded_case_ref": stored.degraded_case_ref,
            "degraded_reasons": stored.degraded_reasons,
        }
        if stored.snmp is not None:
            row |= {name: getattr(stored.snmp, name) for name in _SNMP_FIELDS}
        if probe is not None:
            row |= {"rtt_avg": probe.rtt_avg, "loss": probe.loss, "jitter": probe.jitter}
        rows.append(row)
    if not rows:
        return
    async with sessionmaker() as session, session.begin():
        # Rows with and without probe figures have different column sets; one
        # statement per shape keeps each VALUES list uniform.
        shapes: dict[frozenset[str], list[dict[str, Any]]] = {}
        for row in rows:
            shapes.setdefault(frozenset(row), []).append(row)
        for group in shapes.values():
            await _upsert(session, NtuStateRow, group, ["ntu_id"])


async def load_open_incidents(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    """Dedup key -> reference of every NTU incident still being worked (not solved).

    The detector adopts them at start-up: a case committed just before a crash, whose
    NTU state was not saved yet, is then still restored when the NTU comes back.
    """
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Case.dedup_key, Case.ref).where(
                Case.status.in_(sorted(WORKING_STATUSES)), Case.dedup_key.like("ntu:%")
            )
        )
        return {key: ref for key, ref in rows.all() if key is not None}
