"""Sharding the NTUs over probe workers: Prometheus' hashmod of the id, nothing else."""

from __future__ import annotations

import hashlib
import re
import struct
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nms.app.probe import shard_inventory
from nms.inventory.loader import parse_inventory
from nms.inventory.model import Inventory
from nms.probing.shard import Shard, hashmod

#: The inventory id pattern (nms.inventory.loader._ID_PATTERN).
ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}", fullmatch=True)


def prometheus_hashmod(ident: str, modulus: int) -> int:
    """Prometheus' relabel ``hashmod``, written out independently of nms.probing.shard."""
    digest = hashlib.md5(ident.encode("utf-8")).digest()
    (value,) = struct.unpack(">Q", digest[8:])
    return int(value) % modulus


# -- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1/2", Shard(1, 2)), (" 2 / 4 ", Shard(2, 4)), ("1/1", Shard(1, 1)), ("7/7", Shard(7, 7))],
)
def test_parse_accepts(text: str, expected: Shard) -> None:
    shard = Shard.parse(text)
    assert shard == expected
    assert shard.label == str(shard) == f"{expected.index}/{expected.count}"
    assert shard.slug == f"{expected.index}of{expected.count}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0/2", "shard 0/2: I must be 1 to 2"),
        ("3/2", "shard 3/2: I must be 1 to 2"),
        ("1/0", "the shard count must be 1 to 1024, not 0"),
        ("1/2000", "the shard count must be 1 to 1024, not 2000"),
        ("a/b", "'a/b' is not I/N"),
        ("1", "'1' is not I/N"),
        ("", "'' is not I/N"),
        ("-1/2", "'-1/2' is not I/N"),
        ("1/2/3", "'1/2/3' is not I/N"),
    ],
)
def test_parse_rejects_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        Shard.parse(text)


def test_constructor_checks_too() -> None:
    with pytest.raises(ValueError, match="I must be 1 to 3"):
        Shard(4, 3)
    with pytest.raises(ValueError, match="count must be 1 to 1024"):
        Shard(1, 1025)


# -- the hash -----------------------------------------------------------------------------


@pytest.mark.parametrize("ident", ["acme-hq", "globex-store-001", "ntu-1", "n1", "a:b.c_d-e"])
@pytest.mark.parametrize("modulus", [1, 2, 3, 7, 16, 1000, 2**32])
def test_hashmod_is_prometheus_hashmod(ident: str, modulus: int) -> None:
    assert hashmod(ident, modulus) == prometheus_hashmod(ident, modulus)


def test_hashmod_pinned_values() -> None:
    # Literals: a change of the hash (another digest, other bytes, other byte order)
    # would move NTUs between shards and away from Prometheus' relabelling.
    assert hashmod("acme-hq", 2**64) == 17023538187978792191
    assert hashmod("globex-store-001", 1000) == 759
    assert hashmod("ntu-1", 7) == 6


def test_owns_is_hashmod_plus_one() -> None:
    # acme-hq: hashmod(.., 3) == 2 -> shard 3/3; ntu-1: hashmod(.., 2) == 0 -> shard 1/2.
    assert Shard(3, 3).owns("acme-hq")
    assert not Shard(1, 3).owns("acme-hq") and not Shard(2, 3).owns("acme-hq")
    assert Shard(1, 2).owns("ntu-1") and not Shard(2, 2).owns("ntu-1")


@settings(max_examples=300, deadline=None)
@given(ident=ids, count=st.integers(1, 16))
def test_every_id_has_exactly_one_shard(ident: str, count: int) -> None:
    owners = [i for i in range(1, count + 1) if Shard(i, count).owns(ident)]
    assert owners == [prometheus_hashmod(ident, count) + 1]


@pytest.mark.parametrize("count", range(2, 9))
def test_distribution_is_even_within_ten_percent(count: int) -> None:
    idents = [f"ntu-{i:05d}" for i in range(10_000)]
    per_shard = Counter(hashmod(ident, count) for ident in idents)
    even = len(idents) / count
    assert sorted(per_shard) == list(range(count))
    for shard, n in per_shard.items():
        assert 0.9 * even <= n <= 1.1 * even, (shard, n, even)


# -- shard_inventory ----------------------------------------------------------------------


def _inventory(ntu_count: int, *, extra: str = "") -> Inventory:
    lines = [
        "customers:",
        "  - {id: acme, name: ACME}",
        "  - {id: globex, name: Globex}",
        "profiles:",
        "  - {id: strict, latency_open: 20ms, latency_clear: 10ms}",
        "nodes:",
        "  - {id: pop-1, kind: pop, address: 192.0.2.1}",
    ]
    lines += [
        f"  - {{id: agg-{i}, kind: aggregation, address: 192.0.2.{10 + i}, parent: pop-1}}"
        for i in range(8)
    ]
    lines.append("ntus:")
    lines += [
        f"  - {{id: ntu-{i:03d}, customer: {'acme' if i % 2 else 'globex'}, "
        f"address: 198.51.100.{i}, parent: agg-{i % 8}"
        + (", profile: strict}" if i % 5 == 0 else "}")
        for i in range(ntu_count)
    ]
    return parse_inventory("\n".join(lines) + "\n" + extra, source="inv.yaml", fmt="yaml")


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_shard_inventory_partitions_ntus_and_nodes(count: int) -> None:
    inventory = _inventory(60)
    parts = [shard_inventory(inventory, Shard(i, count)) for i in range(1, count + 1)]
    for index, part in enumerate(parts, start=1):
        assert part.customers == inventory.customers
        assert part.profiles == inventory.profiles
        assert part.source == inventory.source
        assert all(Shard(index, count).owns(n.id) for n in (*part.ntus, *part.nodes))
        assert set(part.by_id) == {n.id for n in part.ntus}
        assert part.ntus, f"shard {index}/{count} got no NTU: the test proves nothing"
    for field in ("ntus", "nodes"):
        every = [n.id for part in parts for n in getattr(part, field)]
        whole = [n.id for n in getattr(inventory, field)]
        assert len(every) == len(set(every)), f"{field}: an id in two shards"
        assert sorted(every) == sorted(whole), f"{field}: union is not the inventory"


def test_an_ntus_shard_does_not_depend_on_the_other_ntus() -> None:
    small, large = _inventory(10), _inventory(60)
    for index in (1, 2, 3):
        shard = Shard(index, 3)
        in_small = {n.id for n in shard_inventory(small, shard).ntus}
        in_large = {n.id for n in shard_inventory(large, shard).ntus}
        assert in_small == in_large & {n.id for n in small.ntus}
