"""Reloading a large inventory: only the changed entries are parsed, with the same result
(and the same messages) as parsing the whole file."""

from __future__ import annotations

from pathlib import Path

import pytest

from nms.errors import InventoryError
from nms.inventory.loader import InventoryCache, load_inventory, parse_inventory

HEAD = """# the fleet
customers:
  - {id: acme, name: ACME}
  - id: beta
    name: Beta
    contacts:
      - {email: noc@beta.example, name: Beta NOC}
profiles:
  - {id: gold, loss_open: 0.02}
nodes:
  - {id: agg-1, kind: aggregation, address: "127.9.0.1"}
ntus:
"""


def ntu(i: int, *, site: str | None = None, snmp: str = "") -> str:
    text = (
        f"  - id: n{i:03d}\n    customer: {'acme' if i % 2 else 'beta'}\n"
        f'    address: "127.9.1.{i}"\n    parent: agg-1\n'
    )
    if site is not None:
        text += f"    site: {site}\n"
    return text + snmp


ANCHOR = "    snmp: &snmp {community: public, port: 11161, wan: {index: 1}}\n"
ALIAS = "    snmp: *snmp\n"


def fleet(changes: dict[str, str] | None = None, count: int = 30) -> str:
    changes = changes or {}
    parts = [HEAD]
    for i in range(count):
        snmp = ANCHOR if i == 0 else ALIAS if i % 3 == 0 else ""
        parts.append(changes.get(f"n{i:03d}", ntu(i, snmp=snmp)))
    return "".join(parts)


def load(path: Path, text: str, cache: InventoryCache) -> object:
    path.write_text(text)
    return load_inventory(path, cache=cache)


def full(path: Path, text: str) -> object:
    return parse_inventory(text, source=str(path), fmt="yaml")


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param({"n004": ntu(4, site="Moved")}, id="one NTU changed"),
        pytest.param({"n006": ntu(6, site="Moved", snmp=ALIAS)}, id="an NTU using the anchor"),
        pytest.param({"n005": ""}, id="one NTU removed"),
        pytest.param({"n005": ntu(5) + ntu(99, site="New")}, id="one NTU added"),
        pytest.param({"n007": ntu(7) + "    # a comment\n"}, id="a comment"),
        pytest.param(
            {"n004": ntu(4, site="Moved"), "n008": ntu(8, site="Here")}, id="two NTUs changed"
        ),
        pytest.param({"n004": ntu(5), "n005": ntu(4)}, id="two NTUs swap places"),
        pytest.param(
            {"n004": ntu(4).replace("customer: beta", "customer: acme")}, id="a customer changed"
        ),
        pytest.param({"n004": ntu(4).replace("127.9.1.4", "127.9.1.99")}, id="an address changed"),
    ],
)
def test_a_reload_parses_only_what_changed_and_matches_a_full_parse(
    tmp_path: Path, edit: dict[str, str]
):
    path = tmp_path / "inventory.yaml"
    cache = InventoryCache()
    assert load(path, fleet(), cache) == full(path, fleet())
    assert cache.hits == 0  # the first load parses everything
    changed = fleet(edit)
    reloaded = load(path, changed, cache)
    assert reloaded == full(path, changed)
    assert reloaded.by_id == {n.id: n for n in reloaded.ntus}  # type: ignore[attr-defined]
    assert cache.hits >= 30 - 2  # the unchanged entries were reused
    assert load(path, fleet(), cache) == full(path, fleet())  # and back


def test_a_changed_anchor_or_an_unusual_layout_parses_the_whole_file(tmp_path: Path):
    path = tmp_path / "inventory.yaml"
    cache = InventoryCache()
    load(path, fleet(), cache)
    moved = fleet({"n000": ntu(0, snmp=ANCHOR.replace("11161", "11162"))})
    inventory = load(path, moved, cache)
    assert cache.hits == 0
    assert inventory == full(path, moved)
    assert {n.snmp.port for n in inventory.ntus if n.snmp} == {11162}  # type: ignore[attr-defined]
    flow = fleet().replace("ntus:\n", "ntus:\n- {id: x0, customer: acme, address: 127.9.2.1}\n")
    with pytest.raises(InventoryError):  # items at two indents: the parser's verdict
        load(path, flow, cache)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({"n004": ntu(4).replace("127.9.1.4", "127.9.1.5")}, id="duplicate address"),
        pytest.param(
            {"n004": ntu(4).replace("customer: beta", "customer: nobody")}, id="unknown customer"
        ),
        pytest.param({"n004": ntu(4, site="[unclosed")}, id="not YAML"),
        pytest.param({"n004": ntu(4).replace("parent: agg-1", "parnt: agg-1")}, id="unknown key"),
        pytest.param({"n004": ntu(4, snmp="    snmp: *nothing\n")}, id="undefined alias"),
    ],
)
def test_a_bad_reload_says_what_a_full_parse_says_and_the_cache_recovers(
    tmp_path: Path, bad: dict[str, str]
):
    path = tmp_path / "inventory.yaml"
    cache = InventoryCache()
    load(path, fleet(), cache)
    with pytest.raises(InventoryError) as quick:
        load(path, fleet(bad), cache)
    with pytest.raises(InventoryError) as whole:
        full(path, fleet(bad))
    assert quick.value.problems == whole.value.problems
    fixed = fleet({"n004": ntu(4, site="Fixed")})
    assert load(path, fixed, cache) == full(path, fixed)
