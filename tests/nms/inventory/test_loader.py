"""Inventory files: every problem reported with file, line and field."""

from __future__ import annotations

import ipaddress
import textwrap
from pathlib import Path

import pytest

from nms.errors import InventoryError
from nms.inventory.loader import load_inventory, parse_inventory

GOOD = textwrap.dedent(
    """\
    customers:
      - id: acme
        name: ACME
    ntus:
      - id: acme-hq
        customer: acme
        service_id: SVC-1
        site: HQ
        address: 192.0.2.10
      - id: acme-v6
        customer: acme
        address: "2001:db8::1"
        parent: acme-hq
        probe: {icmp: {enabled: false}}
    """
)


def problems_of(text: str, fmt: str = "yaml") -> list[str]:
    with pytest.raises(InventoryError) as info:
        parse_inventory(text, source="inv." + fmt, fmt=fmt)  # type: ignore[arg-type]
    return info.value.problems


def test_good_yaml():
    inv = parse_inventory(GOOD, source="inv.yaml", fmt="yaml")
    assert [n.id for n in inv.ntus] == ["acme-hq", "acme-v6"]
    assert inv.ntus[1].address == ipaddress.ip_address("2001:db8::1")
    assert inv.ntus[1].probe.icmp.enabled is False
    assert inv.by_id["acme-hq"].service_id == "SVC-1"


def test_good_csv():
    text = "id,customer,customer_name,service_id,site,address\n"
    text += "n1,c1,Customer One,S1,Site 1,192.0.2.1\nn2,c1,,S2,,2001:db8::2\n"
    inv = parse_inventory(text, source="inv.csv", fmt="csv")
    assert [c.name for c in inv.customers] == ["Customer One"]
    assert [n.site for n in inv.ntus] == ["Site 1", None]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("    address: 192.0.2.10\n", ""), "inv.yaml:5: ntus[0].address (id acme-hq): missing"),
        (("192.0.2.10", "192.0.2.300"), "inv.yaml:9: ntus[0].address (id acme-hq): '192.0.2.300'"),
        (("id: acme-v6", "id: acme-hq"), "inv.yaml:10: ntus[1].id: duplicate id 'acme-hq'"),
        (("2001:db8::1", "192.0.2.10"), "inv.yaml:10: ntus[1].address: 192.0.2.10 is already"),
        (("    site: HQ\n", "    site: HQ\n    colour: red\n"), "inv.yaml:9: ntus[0].colour"),
        (
            ('customer: acme\n    address: "2001', 'customer: acme2\n    address: "2001'),
            "inv.yaml:10: ntus[1].customer: unknown customer 'acme2'",
        ),
        (("service_id: SVC-1", "service_id: [1, 2]"), "ntus[0].service_id"),
        (("parent: acme-hq", "parent: nowhere"), "ntus[1].parent: unknown parent 'nowhere'"),
        (("enabled: false", "enabled: perhaps"), "inv.yaml:14: ntus[1].probe.icmp.enabled"),
        (("customers:", "clients:"), "inv.yaml:1: clients: unknown key"),
    ],
)
def test_each_problem_names_line_and_field(edit, expected):
    old, new = edit
    assert old in GOOD
    problems = problems_of(GOOD.replace(old, new, 1))
    assert any(expected in p for p in problems), problems


def test_every_problem_is_reported_at_once():
    text = GOOD.replace("192.0.2.10", "bad").replace("acme-v6", "acme hq")
    assert len(problems_of(text)) >= 2


def test_parent_cycle():
    text = GOOD.replace(
        "    address: 192.0.2.10\n", "    address: 192.0.2.10\n    parent: acme-v6\n"
    )
    assert any("cycle" in p for p in problems_of(text))


@pytest.mark.parametrize(
    "text", ["just some text", "[1, 2", "{ntus: [", "ntus: 5", "ntus:\n  - 5\n", ""]
)
def test_not_an_inventory(text):
    assert problems_of(text)


def test_csv_problems():
    problems = problems_of("id,customer,addr\nn1,c1,192.0.2.1\n", "csv")
    assert "inv.csv:1: addr: unknown column" in problems
    problems = problems_of("id,customer,address\nn1,c1,192.0.2.1\nn2,c1,nope\n", "csv")
    assert any(p.startswith("inv.csv:3: ntus[1].address") for p in problems)


def test_file_errors(tmp_path: Path):
    with pytest.raises(InventoryError, match="cannot read"):
        load_inventory(tmp_path / "missing.yaml")
    binary = tmp_path / "x.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InventoryError, match="not UTF-8"):
        load_inventory(binary)
