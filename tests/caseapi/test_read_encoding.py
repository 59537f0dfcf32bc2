"""The cheaper encodings of the hot reads answer the same bytes as the plain ones.

A page of cases is encoded without the union of ``CasesPublic`` (``StaffCasesPage``,
``CustomerCasesPage``); timestamps are read with one result processor
(``UTCDateTime.result_processor``). Neither may change a byte of an answer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import httpx
from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql, sqlite

from caseapi.cases.models import Case
from caseapi.cases.schemas import CasesPublic
from caseapi.core.base import UTCDateTime
from caseapi.incidents import IncidentService
from tests.caseapi.conftest import Database, incident


async def _open_some(incidents: IncidentService) -> None:
    for ntu in ("ntu-1", "ntu-2", "ntu-9"):
        await incidents.open_incident(
            incident(ntu, customer_id="cust-2" if ntu == "ntu-9" else "cust-1")
        )


async def test_a_staff_page_is_the_bytes_of_cases_public(
    staff: httpx.AsyncClient, incidents: IncidentService
) -> None:
    await _open_some(incidents)
    response = await staff.get("/v1/cases", params={"limit": 2})
    assert response.status_code == 200
    page = response.json()
    assert len(page["data"]) == 2 and page["next_cursor"] is not None
    assert "dedup_key" in page["data"][0]  # the staff view
    assert response.content == CasesPublic.model_validate(page).model_dump_json().encode()


async def test_a_customer_page_is_the_bytes_of_cases_public(
    acme: httpx.AsyncClient, incidents: IncidentService
) -> None:
    await _open_some(incidents)
    response = await acme.get("/v1/cases")
    assert response.status_code == 200
    page = response.json()
    assert [case["customer_id"] for case in page["data"]] == ["cust-1", "cust-1"]
    assert "dedup_key" not in page["data"][0]  # the customer view
    assert response.content == CasesPublic.model_validate(page).model_dump_json().encode()


def test_postgresql_timestamps_come_as_asyncpg_decodes_them() -> None:
    # asyncpg's timestamptz codec gives aware UTC datetimes: nothing left to do.
    dialect = postgresql.dialect(dbapi=None)  # type: ignore[no-untyped-call]
    dialect.driver = "asyncpg"
    assert UTCDateTime().result_processor(dialect, None) is None


def test_sqlite_timestamps_are_parsed_and_made_utc_in_one_step() -> None:
    dialect = sqlite.dialect()
    process = UTCDateTime().dialect_impl(dialect).result_processor(dialect, None)
    assert process is not None
    assert process(None) is None
    assert process("2026-03-01 12:00:00.000001") == datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=UTC)
    assert process("2026-03-01 12:00:00") == datetime(2026, 3, 1, 12, tzinfo=UTC)
    # A stored offset (not ours: written by hand) is converted, as before.
    east = process("2026-03-01T14:00:00+02:00")
    assert east == datetime(2026, 3, 1, 12, tzinfo=UTC) and east.tzinfo is UTC
    assert process("2026-03-01T14:00:00+02:00") == datetime(
        2026, 3, 1, 14, tzinfo=timezone(timedelta(hours=2))
    )


async def test_timestamps_read_back_aware_and_utc_on_both_backends(
    database: Database, incidents: IncidentService
) -> None:
    ref = await incidents.open_incident(incident("ntu-1"))
    async with database.sessionmaker() as session:
        case = (await session.execute(select(Case).where(Case.ref == ref))).scalar_one()
        latest = (await session.execute(select(Case.created_at).limit(1))).scalar_one()
        raw = (await session.execute(text("SELECT created_at FROM cases"))).scalar_one()
    for value in (case.created_at, case.outage_start, latest):
        assert value is not None and value.tzinfo is UTC
    assert case.created_at == latest
    assert raw is not None
