"""Time to repair per service and site: the inventory's ``services`` and ``sites``."""

from __future__ import annotations

import textwrap
from datetime import timedelta

import pytest

from caseapi.cases.config import DEFAULT_SLA
from caseapi.cases.enums import CasePriority
from caseapi.ntus.models import Ntu
from nms.errors import InventoryError
from nms.inventory.loader import parse_inventory
from nms.inventory.sync import sync_inventory
from tests.caseapi.conftest import Database

H = timedelta(hours=1)

INVENTORY = textwrap.dedent(
    """\
    customers:
      - id: acme
        name: ACME
    services:
      - id: SVC-FAST
        ttr: 2h
      - id: SVC-SPLIT
        ttr: {P1: 1h}
    sites:
      - id: Milano DC1
        ttr: 6h
    ntus:
      - id: all-three
        customer: acme
        service_id: SVC-FAST
        site: Milano DC1
        address: 192.0.2.1
        attributes: {ttr: 10h}
      - id: site-and-ntu
        customer: acme
        service_id: SVC-OTHER
        site: Milano DC1
        address: 192.0.2.2
        attributes: {ttr: 10h}
      - id: ntu-only
        customer: acme
        site: Torino
        address: 192.0.2.3
        attributes: {ttr: 10h}
      - id: defaults
        customer: acme
        address: 192.0.2.4
      - id: per-priority
        customer: acme
        service_id: SVC-SPLIT
        site: Milano DC1
        address: 192.0.2.5
    """
)


def test_services_and_sites_are_read() -> None:
    inventory = parse_inventory(INVENTORY, source="inv.yaml", fmt="yaml")
    assert [(s.id, s.ttr) for s in inventory.services] == [
        ("SVC-FAST", 2 * H),
        ("SVC-SPLIT", {"P1": H}),
    ]
    assert [(s.id, s.ttr) for s in inventory.sites] == [("Milano DC1", 6 * H)]


async def test_precedence_service_site_ntu_default(database: Database) -> None:
    await sync_inventory(
        database.sessionmaker, parse_inventory(INVENTORY, source="inv.yaml", fmt="yaml")
    )
    ttr: dict[str, dict[CasePriority, timedelta | None]] = {}
    async with database.sessionmaker() as session:
        for ntu_id in ("all-three", "site-and-ntu", "ntu-only", "defaults", "per-priority"):
            row = await session.get(Ntu, ntu_id)
            assert row is not None
            ttr[ntu_id] = dict(DEFAULT_SLA.policy(ntu_attributes=row.attributes).ttr)
    p1, p2, p3 = CasePriority
    assert ttr["all-three"] == {p1: 2 * H, p2: 2 * H, p3: None}  # the service's
    assert ttr["site-and-ntu"] == {p1: 6 * H, p2: 6 * H, p3: None}  # no such service: site
    assert ttr["ntu-only"] == {p1: 10 * H, p2: 10 * H, p3: None}  # no such site: NTU's
    assert ttr["defaults"] == {p1: 4 * H, p2: 8 * H, p3: None}  # cases.ttr
    # Per priority: the service sets only P1, the site the rest.
    assert ttr["per-priority"] == {p1: H, p2: 6 * H, p3: None}


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("ttr: 2h", "ttr: 2 hours"),
            "inv.yaml:6: services[0].ttr (id SVC-FAST): '2 hours' is not",
        ),
        (("ttr: 6h", "ttr: 0s"), "inv.yaml:11: sites[0].ttr (id Milano DC1): must be greater"),
        (("{P1: 1h}", "{P5: 1h}"), "inv.yaml:8: services[1].ttr (id SVC-SPLIT): unknown priority"),
        (("{P1: 1h}", "{}"), "inv.yaml:8: services[1].ttr (id SVC-SPLIT): expected a duration"),
        (("id: SVC-SPLIT", "id: SVC-FAST"), "inv.yaml:7: services[1].id: duplicate service"),
        (("    ttr: 6h\n", ""), "inv.yaml:10: sites[0].ttr (id Milano DC1): missing"),
        (("{ttr: 10h}", "{ttr_service: 1h}"), "inv.yaml:18: ntus[0].attributes (id all-three): "),
    ],
)
def test_bad_repair_times_name_line_and_field(edit: tuple[str, str], expected: str) -> None:
    with pytest.raises(InventoryError) as raised:
        parse_inventory(INVENTORY.replace(*edit, 1), source="inv.yaml", fmt="yaml")
    assert any(p.startswith(expected) for p in raised.value.problems), raised.value.problems
