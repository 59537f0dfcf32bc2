"""The list filters of ``GET /v1/cases``: ``customer``, ``source``, ``created_since`` and
``created_before`` (with ``updated_since``'s parsing), alone and beside ``status`` and
``priority``, across pages, within the caller's tenancy.

Each expectation is computed from the fleet as staff read it, so a test states which
cases a filter means rather than listing references.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

import httpx
import pytest

from caseapi.cases.enums import CasePriority, CaseSource, CaseStatus
from caseapi.cases.repository import CaseFilters
from caseapi.cases.service import filters_fingerprint
from caseapi.core.database import encode_cursor
from caseapi.incidents import IncidentService
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import problem
from tests.caseapi.conftest import START, incident

Params = dict[str, str | list[str]]
#: Sources in the order the fleet cycles through them.
SOURCES: Final = ("api", "email", "phone", "proactive")
FLEET_SIZE: Final = 12


@dataclass(frozen=True)
class Row:
    ref: str
    customer: str
    source: str
    priority: str
    status: str
    created_at: datetime


def at(hours: float) -> datetime:
    """The time ``hours`` after the test start (case ``i`` is created at ``i + 1``)."""
    return START + timedelta(hours=hours)


def iso(when: datetime) -> str:
    return when.isoformat()


@pytest.fixture
async def fleet(
    staff: httpx.AsyncClient, incidents: IncidentService, clock: FakeClock
) -> list[Row]:
    """Twelve cases an hour apart, newest first: two customers, every source, P1 and
    P2, some in progress (each property cycling at its own pace, so they mix)."""
    for i in range(FLEET_SIZE):
        clock.advance(timedelta(hours=1))
        customer = "cust-2" if i % 3 == 2 else "cust-1"
        priority = "P1" if i % 2 else "P2"
        source = SOURCES[i % 4]
        if source == "proactive":
            ref = await incidents.open_incident(
                incident(
                    f"ntu-f{i}",
                    customer_id=customer,
                    priority="P1" if priority == "P1" else "P2",
                    outage_start=clock.now() - timedelta(minutes=10),
                    detected_at=clock.now(),
                )
            )
        else:
            body = {
                "type": "incident",
                "summary": f"case {i}",
                "customer_id": customer,
                "priority": priority,
                "source": source,
            }
            created = await staff.post("/v1/cases", json=body)
            assert created.status_code == 201, created.text
            ref = created.json()["ref"]
        if i % 5 in (0, 2):
            moved = await staff.post(f"/v1/cases/{ref}/transitions", json={"to": "in_progress"})
            assert moved.status_code == 200, moved.text
    listed = (await staff.get("/v1/cases", params={"limit": 500})).json()["data"]
    rows = [
        Row(
            ref=case["ref"],
            customer=case["customer_id"],
            source=case["source"],
            priority=case["priority"],
            status=case["status"],
            created_at=datetime.fromisoformat(case["created_at"]),
        )
        for case in listed
    ]
    assert len(rows) == FLEET_SIZE
    assert {row.created_at for row in rows} == {at(i + 1) for i in range(FLEET_SIZE)}
    # The fleet covers what the filters tell apart.
    assert {row.source for row in rows} == set(SOURCES)
    assert {row.customer for row in rows} == {"cust-1", "cust-2"}
    assert {row.status for row in rows} == {"new", "in_progress"}
    return rows


async def walk(client: httpx.AsyncClient, params: Params, *, limit: int = 2) -> list[str]:
    """Every reference the listing returns, following ``next_cursor`` page by page.

    Checks on the way that each page has the same ``count``, that no reference comes
    twice and that ``count`` is the number returned over all pages.
    """
    refs: list[str] = []
    counts: set[int] = set()
    cursor: str | None = None
    while True:
        query: dict[str, Any] = {**params, "limit": limit}
        if cursor is not None:
            query["cursor"] = cursor
        response = await client.get("/v1/cases", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["data"]) <= limit
        counts.add(body["count"])
        refs += [case["ref"] for case in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(refs) == len(set(refs)), refs
    assert counts == {len(refs)}, (counts, refs)
    return refs


def expected(rows: list[Row], *keep: Callable[[Row], bool]) -> list[str]:
    """The references of ``rows`` that every one of ``keep`` keeps, in listing order."""
    return [row.ref for row in rows if all(predicate(row) for predicate in keep)]


#: name -> (query parameters, which rows they mean).
FILTERS: Final[dict[str, tuple[Params, Callable[[Row], bool]]]] = {
    "customer": ({"customer": "cust-2"}, lambda r: r.customer == "cust-2"),
    "source": ({"source": "email"}, lambda r: r.source == "email"),
    "source repeated": (
        {"source": ["api", "proactive"]},
        lambda r: r.source in ("api", "proactive"),
    ),
    "created_since": ({"created_since": iso(at(5))}, lambda r: r.created_at >= at(5)),
    "created_before": ({"created_before": iso(at(9))}, lambda r: r.created_at < at(9)),
    "created window": (
        {"created_since": iso(at(3)), "created_before": iso(at(11))},
        lambda r: at(3) <= r.created_at < at(11),
    ),
    "created_since with an offset": (
        # 18:30+02:00 is 16:30 UTC: after case 3 (16:00), before case 4 (17:00).
        {"created_since": "2026-03-01T18:30:00+02:00"},
        lambda r: r.created_at >= at(5),
    ),
    "all of them": (
        {
            "customer": "cust-1",
            "source": ["api", "email", "phone"],
            "created_since": iso(at(2)),
            "created_before": iso(at(12)),
        },
        lambda r: (
            r.customer == "cust-1" and r.source != "proactive" and at(2) <= r.created_at < at(12)
        ),
    ),
}

#: The filters the new ones are combined with.
BESIDE: Final[dict[str, tuple[Params, Callable[[Row], bool]]]] = {
    "alone": ({}, lambda r: True),
    "status": ({"status": "in_progress"}, lambda r: r.status == "in_progress"),
    "statuses": ({"status": ["new", "in_progress"]}, lambda r: True),
    "priority": ({"priority": "P1"}, lambda r: r.priority == "P1"),
    "status and priority": (
        {"status": "new", "priority": "P2"},
        lambda r: r.status == "new" and r.priority == "P2",
    ),
}


@pytest.mark.parametrize("name", list(FILTERS))
async def test_each_filter_alone_and_beside_status_and_priority_across_pages(
    staff: httpx.AsyncClient, fleet: list[Row], name: str
) -> None:
    params, keep = FILTERS[name]
    found = 0
    for beside, (other_params, other_keep) in BESIDE.items():
        want = expected(fleet, keep, other_keep)
        assert await walk(staff, {**params, **other_params}) == want, beside
        found += len(want)
    assert found > 0


async def test_the_filters_narrow_the_fleet(fleet: list[Row]) -> None:
    # Guards the table above: each filter keeps some cases and drops others.
    for name, (_, keep) in FILTERS.items():
        kept = expected(fleet, keep)
        assert 0 < len(kept) < len(fleet), name


async def test_one_page_or_many_give_the_same_cases(
    staff: httpx.AsyncClient, fleet: list[Row]
) -> None:
    params: Params = {"customer": "cust-1", "source": ["api", "phone", "proactive"]}
    whole = await walk(staff, params, limit=500)
    assert whole == expected(
        fleet, lambda r: r.customer == "cust-1" and r.source in ("api", "phone", "proactive")
    )
    for limit in (1, 3):
        assert await walk(staff, params, limit=limit) == whole


# -- customer --------------------------------------------------------------------------


async def test_staff_filter_by_customer(staff: httpx.AsyncClient, fleet: list[Row]) -> None:
    assert await walk(staff, {"customer": "cust-1"}) == expected(
        fleet, lambda r: r.customer == "cust-1"
    )
    nobody = await staff.get("/v1/cases", params={"customer": "globex"})
    assert nobody.status_code == 200
    assert (nobody.json()["data"], nobody.json()["count"]) == ([], 0)


async def test_a_customer_sees_its_own_cases_with_or_without_naming_itself(
    acme: httpx.AsyncClient, other: httpx.AsyncClient, fleet: list[Row]
) -> None:
    own = expected(fleet, lambda r: r.customer == "cust-1")
    assert await walk(acme, {}) == own
    assert await walk(acme, {"customer": "cust-1"}) == own
    assert await walk(acme, {"customer": "cust-1", "source": "email"}) == expected(
        fleet, lambda r: r.customer == "cust-1" and r.source == "email"
    )
    assert await walk(other, {"created_since": iso(at(6))}) == expected(
        fleet, lambda r: r.customer == "cust-2" and r.created_at >= at(6)
    )


async def test_a_customer_cannot_list_another_customers_cases(
    acme: httpx.AsyncClient, other: httpx.AsyncClient, fleet: list[Row]
) -> None:
    # Existing or not, and however combined: refused, never rewritten to its own.
    for named in ("cust-2", "globex", "CUST-1", ""):
        for params in (
            {"customer": named},
            {"customer": named, "status": "new", "source": "api"},
            {"customer": named, "created_since": iso(at(1)), "limit": "500"},
        ):
            response = await acme.get("/v1/cases", params=params)
            body = problem(response, 403, "customer_mismatch")
            assert body["field"] == "customer"
            assert not any(row.ref in body["detail"] for row in fleet)
    problem(await other.get("/v1/cases", params={"customer": "cust-1"}), 403, "customer_mismatch")


# -- bad values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"source": "fax"}, "source.0"),
        ({"source": ["api", "fax"]}, "source.1"),
        ({"customer": "c" * 65}, "customer"),
        ({"created_since": "yesterday"}, "created_since"),
        ({"created_since": "2026-03-01T12:00:00"}, "created_since"),  # naive
        ({"created_since": "2026-03-01"}, "created_since"),  # a date, no time of day
        ({"created_since": "0.5"}, "created_since"),  # would be Unix time
        ({"created_since": "1772366400"}, "created_since"),
        ({"created_since": "0001-01-01T00:00:00+14:00"}, "created_since"),  # before year 1 in UTC
        ({"created_before": "2026-13-01T00:00:00Z"}, "created_before"),
        ({"created_before": "2026-03-01T12:00:00"}, "created_before"),
        ({"created_before": "-1"}, "created_before"),
        ({"updated_since": "0.5"}, "updated_since"),
        ({"updated_since": "1772366400"}, "updated_since"),
        ({"updated_since": "1e9"}, "updated_since"),
        ({"updated_since": "2026-03-01"}, "updated_since"),
        ({"updated_since": "0001-01-01T00:00:00+14:00"}, "updated_since"),
    ],
)
async def test_a_bad_value_is_a_422_naming_the_field(
    staff: httpx.AsyncClient, acme: httpx.AsyncClient, params: Params, field: str
) -> None:
    for client in (staff, acme):
        body = problem(await client.get("/v1/cases", params=params), 422, "validation_error")
        assert [error["field"] for error in body["errors"]] == [field]
        assert body["detail"].startswith(f"{field}: ")


async def test_numbers_are_not_read_as_unix_time(staff: httpx.AsyncClient) -> None:
    body = problem(
        await staff.get("/v1/cases", params={"updated_since": "0.5"}), 422, "validation_error"
    )
    assert "ISO 8601" in body["errors"][0]["message"]


@pytest.mark.parametrize("gap", [timedelta(0), timedelta(hours=-1)])
async def test_created_before_must_be_later_than_created_since(
    staff: httpx.AsyncClient, gap: timedelta
) -> None:
    params = {"created_since": iso(at(3)), "created_before": iso(at(3) + gap)}
    body = problem(await staff.get("/v1/cases", params=params), 422, "validation_error")
    assert {error["field"] for error in body["errors"]} == {"created_since", "created_before"}
    assert "created_since" in body["detail"] and "created_before" in body["detail"]
    # The same instant written in another offset is still the same instant.
    same = at(3).astimezone(timezone(timedelta(hours=-5))).isoformat()
    clash = {"created_since": iso(at(3)), "created_before": same}
    problem(await staff.get("/v1/cases", params=clash), 422, "validation_error")


async def test_aware_times_in_any_offset_are_accepted(
    staff: httpx.AsyncClient, fleet: list[Row]
) -> None:
    for text in ("2026-03-01T17:00:00Z", "2026-03-01T17:00Z", "2026-03-01 18:00:00+01:00"):
        response = await staff.get("/v1/cases", params={"created_since": text})
        assert response.status_code == 200, (text, response.text)
        assert response.json()["count"] == len(expected(fleet, lambda r: r.created_at >= at(5)))


# -- the cursor is bound to the filters --------------------------------------------------


async def _first_cursor(client: httpx.AsyncClient, params: Params) -> str:
    response = await client.get("/v1/cases", params={**params, "limit": 2})
    assert response.status_code == 200, response.text
    cursor = response.json()["next_cursor"]
    assert isinstance(cursor, str)
    return cursor


#: Filters that differ from ``{"status": "in_progress"}`` (even where the rows would not).
CHANGED: Final[list[Params]] = [
    {"status": "new"},
    {"status": ["in_progress", "new"]},
    {"status": "in_progress", "priority": "P1"},
    {"status": "in_progress", "source": "api"},
    {"status": "in_progress", "customer": "cust-2"},
    {"status": "in_progress", "created_since": iso(at(2))},
    {"status": "in_progress", "created_before": iso(at(11))},
    {"status": "in_progress", "updated_since": iso(START)},
    {},
]


async def test_a_cursor_followed_with_other_filters_is_refused(
    staff: httpx.AsyncClient, fleet: list[Row]
) -> None:
    cursor = await _first_cursor(staff, {"status": "in_progress"})
    for changed in CHANGED:
        response = await staff.get("/v1/cases", params={**changed, "cursor": cursor})
        body = problem(response, 422, "validation_error")
        assert [error["field"] for error in body["errors"]] == ["cursor"], changed
        assert "other filters" in body["errors"][0]["message"]
    # With its own filters it still leads on.
    followed = await staff.get("/v1/cases", params={"status": "in_progress", "cursor": cursor})
    assert followed.status_code == 200, followed.text


async def test_a_cursor_follows_the_same_filters_however_spelt(
    staff: httpx.AsyncClient, fleet: list[Row]
) -> None:
    first: Params = {"source": ["api", "proactive"], "created_since": iso(at(1))}
    cursor = await _first_cursor(staff, first)
    # Values in another order, repeated, the same instant in another offset, another
    # page size: the same listing.
    same: Params = {
        "source": ["proactive", "api", "api"],
        "created_since": at(1).astimezone(timezone(timedelta(hours=9))).isoformat(),
        "limit": "3",
    }
    response = await staff.get("/v1/cases", params={**same, "cursor": cursor})
    assert response.status_code == 200, response.text
    want = expected(fleet, lambda r: r.source in ("api", "proactive"))
    assert [case["ref"] for case in response.json()["data"]] == want[2:5]


async def test_a_customers_cursor_is_bound_to_its_scope(
    acme: httpx.AsyncClient, staff: httpx.AsyncClient, fleet: list[Row]
) -> None:
    cursor = await _first_cursor(acme, {})
    # Naming itself is the same listing for the customer ...
    followed = await acme.get("/v1/cases", params={"customer": "cust-1", "cursor": cursor})
    assert followed.status_code == 200, followed.text
    # ... and the customer's listing for staff.
    assert (
        await staff.get("/v1/cases", params={"customer": "cust-1", "cursor": cursor})
    ).is_success
    # Without the customer scope it is another listing.
    problem(await staff.get("/v1/cases", params={"cursor": cursor}), 422, "validation_error")


async def test_a_cursor_without_filters_is_refused(
    staff: httpx.AsyncClient, fleet: list[Row]
) -> None:
    # What cursors looked like before they were bound to their filters.
    response = await staff.get("/v1/cases", params={"cursor": encode_cursor({"id": 5})})
    body = problem(response, 422, "validation_error")
    assert [error["field"] for error in body["errors"]] == ["cursor"]


def test_the_fingerprint_ignores_spelling_not_meaning() -> None:
    base = CaseFilters(
        statuses=[CaseStatus.NEW, CaseStatus.IN_PROGRESS],
        sources=[CaseSource.API],
        created_since=datetime(2026, 3, 1, 12, tzinfo=UTC),
    )
    spelt = CaseFilters(
        statuses=(CaseStatus.IN_PROGRESS, CaseStatus.NEW, CaseStatus.NEW),
        sources=(CaseSource.API,),
        created_since=datetime(2026, 3, 1, 13, tzinfo=timezone(timedelta(hours=1))),
    )
    assert filters_fingerprint(base) == filters_fingerprint(spelt)
    for changed in (
        CaseFilters(statuses=base.statuses, sources=base.sources),
        CaseFilters(statuses=base.statuses, created_since=base.created_since),
        CaseFilters(
            statuses=base.statuses,
            sources=base.sources,
            created_since=base.created_since,
            priorities=[CasePriority.P1],
        ),
        CaseFilters(
            statuses=base.statuses,
            sources=base.sources,
            created_since=base.created_since,
            customer_id="cust-1",
        ),
        CaseFilters(
            statuses=base.statuses,
            sources=base.sources,
            created_before=base.created_since,
        ),
    ):
        assert filters_fingerprint(changed) != filters_fingerprint(base), changed
