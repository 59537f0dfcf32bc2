"""A batch of incidents (``open_incidents``) writes what one call per request writes.

A mass outage opens its new cases in bulk (``store.insert_cases``); these tests hold
that shortcut to the rules of ``open_incident``: two twin fleets (``twa-*`` and
``twb-*``) get the same requests, one call each for the first, one batch for the
second, and every row written (cases, timeline, customer notifications, staff
alerts, outage history) must be the same once the NTU ids, case references and
row ids are named alike. Both backends, with and without an organisation (routing
and on-call), on a fake clock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.cases import repository
from caseapi.cases.enums import CaseStatus
from caseapi.cases.models import Case, CaseEvent
from caseapi.customers.models import Customer
from caseapi.incidents import IncidentOpen, IncidentService, ntu_degraded_key, ntu_down_key
from caseapi.notifications.models import Notification
from caseapi.ntus.models import Ntu
from caseapi.oncall.models import StaffAlert
from caseapi.reports.models import OutageInterval
from nms.clock import FakeClock
from tests.caseapi.conftest import START, Database, incident
from tests.caseapi.test_staff_alerts import _organisation
from tests.caseapi.test_teams import organise

TWINS = ("twa", "twb")
#: Row ids and secrets differ between the twins by construction.
_VOLATILE = {"id", "event_id", "case_id", "recurrence_of", "parent_case_id", "ack_token_hash"}


async def _fleet(database: Database) -> None:
    """Two customers (cust-2's contract expired: no support) and twin NTUs, one with
    its own repair target (a per-NTU SLA policy)."""
    async with database.sessionmaker() as session:
        session.add(Customer(id="cust-1", name="Acme", attributes={"region": "north"}))
        session.add(Customer(id="cust-2", name="Lapsed", contract_status="expired"))
        await session.flush()
        for twin in TWINS:
            for n in range(1, 8):
                session.add(
                    Ntu(
                        id=f"{twin}-{n}",
                        customer_id="cust-2" if n == 2 else "cust-1",
                        address=f"10.{TWINS.index(twin)}.0.{n}",
                        service_id=f"svc-{n}",
                        site=f"Site {n}",
                        attributes={"ttr": "2h"} if n == 1 else {},
                    )
                )
        await session.commit()


def _requests(twin: str) -> list[IncidentOpen]:
    def down(n: int, **kw: Any) -> IncidentOpen:
        customer = "cust-2" if n == 2 else "cust-1"
        return incident(f"{twin}-{n}", customer_id=customer, **kw)

    return [
        down(1),  # new
        down(2),  # new, no support
        down(3),  # new, its previous case closed: a new case linked to it
        down(4),  # already open: the same case
        down(1),  # twice in one batch: the same case
        incident(f"{twin}-5", priority="P2", dedup_key=ntu_degraded_key(f"{twin}-5")),
        replace(down(6), supersedes=ntu_degraded_key(f"{twin}-6")),  # upgrades its P2
        replace(down(7), supersedes=ntu_degraded_key(f"{twin}-7")),  # no P2: new
    ]


async def _history(incidents: IncidentService, database: Database, twin: str) -> None:
    """Before the outage: a closed case on NTU 3, an open P1 on 4, an open P2 on 6."""
    await incidents.open_incident(incident(f"{twin}-3", outage_start=START - timedelta(days=9)))
    async with database.sessionmaker() as session:
        case = await repository.get_open_case_by_dedup_key(
            session, dedup_key=ntu_down_key(f"{twin}-3")
        )
        assert case is not None
        await repository.set_case_status(session, case=case, status=CaseStatus.CLOSED, at=START)
        await session.commit()
    await incidents.open_incident(incident(f"{twin}-4"))
    p2 = incident(f"{twin}-6", priority="P2", dedup_key=ntu_degraded_key(f"{twin}-6"))
    await incidents.open_incident(p2)


def _rows(rows: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {c.name: getattr(r, c.key) for c in r.__table__.columns if c.name not in _VOLATILE}
        for r in rows
    ]


async def _dump(database: Database, twin: str) -> list[str]:
    """Everything written about ``twin``'s NTUs, with ids and references named alike."""
    async with database.sessionmaker() as session:
        cases = (
            await session.scalars(
                select(Case).where(Case.ntu_id.startswith(f"{twin}-")).order_by(Case.id)
            )
        ).all()
        names: dict[str, str] = {}
        for case in cases:
            ordinal = sum(1 for other in names.values() if other.startswith(f"{case.dedup_key}#"))
            names[case.ref] = f"{case.dedup_key}#{ordinal}"
        ids = [c.id for c in cases]
        by_id = {c.id: names[c.ref] for c in cases}
        found: list[dict[str, Any]] = []
        for case, row in zip(cases, _rows(cases), strict=True):
            row["recurrence_of"] = by_id.get(case.recurrence_of) if case.recurrence_of else None
            found.append({"case": row})
        for model in (CaseEvent, Notification, StaffAlert, OutageInterval):
            table: Any = model
            rows = (await session.scalars(select(table).where(table.case_id.in_(ids)))).all()
            for row, values in zip(rows, _rows(rows), strict=True):
                values["case"] = by_id[row.case_id]
                found.append({model.__tablename__: values})
    text = [json.dumps(item, sort_keys=True, default=str) for item in found]
    for ref, name in names.items():
        text = [t.replace(ref, name) for t in text]
    # Staff alert keys carry row ids (case:<id>:...): only their shape is compared.
    text = [re.sub(r"case:\d+(:event:\d+)?", "case:N", t) for t in text]
    text = [re.sub(r"token=[\w.-]+", "token=T", t) for t in text]  # ack links: secrets
    text = [re.sub(r'"staff_alert_id": \d+', '"staff_alert_id": N', t) for t in text]
    return sorted(t.replace(f"{twin}-", "tw-") for t in text)


@pytest.mark.parametrize("organisation", ["none", "routing", "on-call"])
async def test_a_batch_writes_what_one_call_per_request_writes(
    database: Database, incidents: IncidentService, clock: FakeClock, organisation: str
) -> None:
    await _fleet(database)
    if organisation == "routing":
        await organise(database)  # teams and routing rules, no on-call: no staff alerts
    elif organisation == "on-call":
        await _organisation(database)
    for twin in TWINS:
        await _history(incidents, database, twin)
    clock.advance(timedelta(minutes=5))
    one_by_one = [await incidents.open_incident(r) for r in _requests("twa")]
    batch = await incidents.open_incidents(_requests("twb"))
    assert len(batch) == 8
    assert batch[4] == batch[0]
    a, b = await _dump(database, "twa"), await _dump(database, "twb")
    assert a == b
    assert len(a) >= 30  # cases, entries, notifications, intervals (and alerts) compared
    assert len(set(one_by_one)) == len(set(batch)) == 7
    # Retried (the detector's answer was lost): the same references, nothing more written.
    assert await incidents.open_incidents(_requests("twb")) == batch
    assert await _dump(database, "twb") == b


async def _count(database: Database) -> int:
    async with database.sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(Case))).scalar_one())


async def test_a_thousand_new_cases_take_a_few_statements_per_table(
    database: Database, incidents: IncidentService
) -> None:
    """A mass outage: the new cases' rows go in bulk, not one statement each (SQLite
    inserts the cases row by row: it cannot return generated ids in order)."""
    await _fleet(database)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    from sqlalchemy import event

    requests = [incident(f"mass-{n}") for n in range(1000)]
    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        refs = await incidents.open_incidents(requests)
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)
    assert len(set(refs)) == 1000
    assert await _count(database) == 1000
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT")]
    per_case = 1.2 if database.backend == "sqlite" else 0.05
    assert len(inserts) <= 1000 * per_case + 20, len(inserts)
    assert len(statements) <= len(inserts) + 40


class _RacedBatch(IncidentService):
    """Another writer opens the case of one key between the batch's look-up and its
    insert, as a second detector (or an API replica) could."""

    async def _insert_new(
        self, session: AsyncSession, requests: Sequence[IncidentOpen]
    ) -> dict[str, str]:
        if any(r.ntu_id == "twa-3" for r in requests):
            rival = IncidentService(sessionmaker=_RIVAL[0], clock=self._clock)
            await rival.open_incident(incident("twa-3"))
        return await super()._insert_new(session, requests)


_RIVAL: list[Any] = []


async def test_a_key_opened_by_another_writer_meanwhile_costs_no_duplicate(
    database: Database, clock: FakeClock
) -> None:
    if database.backend == "sqlite":
        pytest.skip("SQLite serialises writers: the rival waits for the batch's commit")
    await _fleet(database)
    _RIVAL[:] = [database.sessionmaker]
    service = _RacedBatch(sessionmaker=database.sessionmaker, clock=clock)
    requests = [incident(f"twa-{n}") for n in (1, 3, 4)]
    refs = await service.open_incidents(requests)
    assert len(set(refs)) == 3
    assert await _count(database) == 3  # the rival's case is the batch's answer for twa-3
    assert await service.open_incidents(requests) == refs


async def test_a_failed_batch_writes_nothing(database: Database, clock: FakeClock) -> None:
    """Atomic: a batch that fails half-way leaves no case, entry or outbox row."""

    class _Fails(IncidentService):
        async def _insert_new(
            self, session: AsyncSession, requests: Sequence[IncidentOpen]
        ) -> dict[str, str]:
            await super()._insert_new(session, requests)
            raise IntegrityError("INSERT", {}, Exception("unique"))

    class _Broken(IncidentService):
        async def _insert_new(
            self, session: AsyncSession, requests: Sequence[IncidentOpen]
        ) -> dict[str, str]:
            await super()._insert_new(session, requests)
            raise OSError("connection lost")

    await _fleet(database)
    with pytest.raises(OSError, match="connection lost"):
        await _Broken(sessionmaker=database.sessionmaker, clock=clock).open_incidents(
            [incident("twa-1"), incident("twa-2", customer_id="cust-2")]
        )
    assert await _count(database) == 0
    async with database.sessionmaker() as session:
        for model in (CaseEvent, Notification, OutageInterval):
            table: Any = model
            assert (await session.execute(select(func.count()).select_from(table))).scalar() == 0
    # A lost race (IntegrityError) falls back to one transaction per request.
    refs = await _Fails(sessionmaker=database.sessionmaker, clock=clock).open_incidents(
        [incident("twa-1"), incident("twa-1")]
    )
    assert refs[0] == refs[1]
    assert await _count(database) == 1
