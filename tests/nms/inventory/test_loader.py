"""Inventory files: every problem reported with file, line and field."""

from __future__ import annotations

import contextlib
import ipaddress
import re
import tempfile
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from nms.errors import InventoryError
from nms.inventory import loader
from nms.inventory.loader import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_VALUES,
    load_inventory,
    parse_inventory,
)
from tests.conftest import require

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


# --- addresses that cannot be a device -----------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("0.0.0.0", "0.0.0.0 is the unspecified address"),
        ("::", ":: is the unspecified address"),
        ("0.1.2.3", "0.1.2.3 is in 0.0.0.0/8"),
        ("255.255.255.255", "255.255.255.255 is the broadcast address"),
        ("224.0.0.1", "224.0.0.1 is a multicast address"),
        ("239.255.255.250", "239.255.255.250 is a multicast address"),
        ("ff02::1", "ff02::1 is a multicast address"),
        ("240.0.0.1", "240.0.0.1 is in the reserved block 240.0.0.0/4"),
        (
            "::ffff:192.0.2.1",
            "::ffff:192.0.2.1 is an IPv4-mapped IPv6 address: write it as 192.0.2.1",
        ),
    ],
)
def test_addresses_that_cannot_be_a_device_are_refused(address: str, expected: str):
    problems = problems_of(GOOD.replace("192.0.2.10", f'"{address}"'))
    assert problems[0].startswith(f"inv.yaml:9: ntus[0].address (id acme-hq): {expected}")


def test_a_node_address_is_checked_too():
    text = GOOD.replace("ntus:", "nodes:\n  - {id: pop, kind: pop, address: 224.0.0.9}\nntus:")
    assert problems_of(text) == [
        "inv.yaml:5: nodes[0].address (id pop): 224.0.0.9 is a multicast address, never a device's"
    ]


def test_a_refused_csv_address_names_its_line():
    text = "id,customer,address\nn1,c1,192.0.2.1\nn2,c1,0.0.0.0\n"
    assert problems_of(text, "csv") == [
        "inv.csv:3: ntus[1].address (id n2): 0.0.0.0 is the unspecified address, never a device's"
    ]


@pytest.mark.parametrize(
    "address",
    # Loopback: the examples and load tests; link-local and ULA: the lab (LAB.md);
    # a /24's first and last addresses are hosts in a wider prefix.
    ["127.0.0.1", "127.77.10.1", "::1", "169.254.3.2", "fe80::1", "fd4e:5455:3::2",
     "192.0.2.0", "192.0.2.255", "223.255.255.254"],
)  # fmt: skip
def test_loopback_link_local_and_ordinary_addresses_are_allowed(address: str):
    inv = parse_inventory(GOOD.replace("192.0.2.10", address), source="inv.yaml", fmt="yaml")
    assert inv.ntus[0].address == ipaddress.ip_address(address)


def test_a_huge_non_address_is_not_echoed_whole():
    problem = problems_of(GOOD.replace("192.0.2.10", "x" * 100_000))[0]
    assert "is not an IPv4 or IPv6 address" in problem and len(problem) < 200
    problem = problems_of(GOOD.replace("192.0.2.10", "[" + "1, " * 10_000 + "1]"))[0]
    assert problem.endswith("expected an IPv4 or IPv6 address as text, got a list")


# --- malformed files: always an InventoryError, in bounded time and memory -------------

DEPTH = 10_000


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("ntus: " + "[" * DEPTH + "]" * DEPTH, 1),
        ("ntus: " + "{a: " * DEPTH + "x" + "}" * DEPTH, 1),
        ("ntus:\n  " + "- " * DEPTH + "x\n", 2),
        ("ntus:\n" + "".join(" " * i + "a:\n" for i in range(1, 200)) + " " * 200 + "x\n", 32),
    ],
    ids=["flow-lists", "flow-mappings", "block-lists", "block-mappings"],
)
def test_deep_nesting_is_refused_not_a_recursion_error(text: str, line: int):
    assert problems_of(text) == [
        f"inv.yaml:{line}: too deeply nested (more than {MAX_DEPTH} levels)"
    ]


def nested_attributes(levels: int) -> str:
    """GOOD with a first NTU whose ``attributes`` make the file ``levels`` levels deep."""
    # Top mapping, ntus list, NTU mapping, attributes mapping; then lists and a scalar.
    lists = levels - 5
    return GOOD.replace(
        "    site: HQ\n", f"    site: HQ\n    attributes: {{a: {'[' * lists}1{']' * lists}}}\n"
    )


def test_nesting_up_to_the_limit_is_read_then_validated():
    problems = problems_of(nested_attributes(MAX_DEPTH))
    assert problems[0].startswith("inv.yaml:9: ntus[0].attributes.a"), problems
    assert not any("too deeply" in p for p in problems)
    assert problems_of(nested_attributes(MAX_DEPTH + 1)) == [
        f"inv.yaml:9: too deeply nested (more than {MAX_DEPTH} levels)"
    ]


def test_aliases_cannot_deepen_past_the_limit():
    deep = "[" * 20 + "]" * 20
    text = f"ntus:\n  - &deep {deep}\n  - " + "[" * 20 + "*deep" + "]" * 20 + "\n"
    assert problems_of(text) == [f"inv.yaml:3: too deeply nested (more than {MAX_DEPTH} levels)"]


BILLION_LAUGHS = (
    "customers:\n  - &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    + "".join(
        f"  - &{b} [{', '.join([f'*{a}'] * 9)}]\n"
        for a, b in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "ntus:\n  - {id: x, customer: acme, address: *i, site: *i}\n"
)


def test_an_alias_bomb_is_refused_before_it_expands():
    # 9**9 (387 million) "lol"s: refused at the first anchor past MAX_VALUES.
    assert problems_of(BILLION_LAUGHS) == [
        f"inv.yaml:8: too large: more than {MAX_VALUES:,} values once aliases are expanded"
    ]


def test_a_shared_anchor_still_works():
    text = textwrap.dedent(
        """\
        customers: [{id: acme, name: ACME}]
        ntus:
          - {id: n1, customer: acme, address: 192.0.2.1, snmp: &snmp {community: public}}
          - {id: n2, customer: acme, address: 192.0.2.2, snmp: *snmp}
          - {id: n3, customer: acme, address: 192.0.2.3, snmp: *snmp}
        """
    )
    inv = parse_inventory(text, source="inv.yaml", fmt="yaml")
    communities = [n.snmp.community for n in inv.ntus if n.snmp is not None]
    assert [c.get_secret_value() for c in communities if c is not None] == ["public"] * 3


@pytest.mark.parametrize("text", ["ntus: &a [*a]\n", "ntus: &a {x: *a}\n"])
def test_a_recursive_alias_is_refused(text: str):
    assert problems_of(text) == ["inv.yaml:1: an alias inside its own anchor (recursive)"]


def test_a_key_that_is_a_list_is_refused():
    assert problems_of("ntus: []\n? " + "[a] " + "\n: x\n") == [
        "inv.yaml:2: a key must be a plain value, not a list or mapping"
    ]


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n"])
def test_an_empty_file(text: str):
    assert problems_of(text) == [
        "inv.yaml:1: empty: expected a mapping with 'customers' and 'ntus' lists at the top"
    ]


def test_binary_garbage(tmp_path: Path):
    path = tmp_path / "garbage.yaml"
    path.write_bytes(b"ntus: []\n\x00\x01\x02\x03\x7f binary")  # valid UTF-8, not YAML
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    assert info.value.problems == [
        f"{path}:2: not valid YAML: character #x00 is not allowed (is it a binary file?)"
    ]
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(InventoryError, match="not UTF-8"):
        load_inventory(path)


def test_a_huge_file_is_refused_without_reading_it_all(tmp_path: Path):
    path = tmp_path / "huge.yaml"
    with path.open("wb") as file:
        file.truncate(MAX_FILE_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    assert info.value.problems == [f"{path}: too large: more than 64 MiB (is it an inventory?)"]


def test_a_csv_header_beyond_the_field_limit(tmp_path: Path):
    path = tmp_path / "wide.csv"
    path.write_text("a" * 200_000 + "\n")
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    assert info.value.problems == [
        f"{path}:1: not valid CSV: field larger than field limit (131072)"
    ]


def test_line_endings_are_read_as_before(tmp_path: Path):
    path = tmp_path / "crlf.yaml"
    path.write_bytes(GOOD.replace("192.0.2.10", "bad").replace("\n", "\r\n").encode())
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    assert info.value.problems[0].startswith(f"{path}:9: ntus[0].address")


@settings(max_examples=300, deadline=None)
@given(text=st.text())
def test_any_text_is_an_inventory_or_an_inventory_error(text: str):
    for fmt in ("yaml", "csv"):
        with contextlib.suppress(InventoryError):
            parse_inventory(text, source="inv", fmt=fmt)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=2000))
def test_any_bytes_are_an_inventory_or_an_inventory_error(data: bytes):
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("x.yaml", "x.csv"):
            path = Path(tmp) / name
            path.write_bytes(data)
            with contextlib.suppress(InventoryError):
                load_inventory(path)


CONTACTS = textwrap.dedent(
    """\
    customers:
      - id: acme
        name: ACME
        contacts:
          - {email: NOC@Acme.example, name: ACME NOC, language: IT, roles: [notify, technical]}
          - {email: accounts@acme.example, roles: billing}
          - email: ops@acme.example
      - id: beta
        name: Beta
        contacts:
          - {email: beta@beta.example, language: en}
    ntus: []
    """
)


def test_contacts_are_read_lower_cased_with_default_roles():
    inv = parse_inventory(CONTACTS, source="inv.yaml", fmt="yaml")
    noc, accounts, ops = inv.customers[0].contacts
    assert (noc.email, noc.name, noc.language, noc.roles) == (
        "noc@acme.example",
        "ACME NOC",
        "it",
        ("notify", "technical"),
    )
    assert accounts.roles == ("billing",) and accounts.language == "en"
    assert ops.roles == ("notify",)


BAD_CONTACTS = textwrap.dedent(
    """\
    customers:
      - id: acme
        name: ACME
        contacts:
          - {email: noc@acme.example}
          - {email: ops@@acme}
      - id: gamma
        name: Gamma
        contacts:
          - {email: noc@acme.example}
          - {email: g@gamma.example, language: de}
          - {email: h@gamma.example, roles: [boss]}
    ntus: []
    """
)


def test_contact_errors_name_file_line_and_field():
    assert problems_of(BAD_CONTACTS) == [
        "inv.yaml:6: customers[0].contacts.1.email (id acme): 'ops@@acme' is not an e-mail "
        "address such as name@example.net",
        "inv.yaml:11: customers[1].contacts.1.language (id gamma): unknown language 'de': "
        "one of en, it (a language is a folder of mail templates)",
        "inv.yaml:12: customers[1].contacts.2.roles (id gamma): unknown role 'boss': "
        "one of notify, technical, billing, escalation",
    ]
    # Once each contact is valid, the same address at two customers is refused.
    fixed = BAD_CONTACTS.replace("ops@@acme", "ops@acme.example")
    fixed = fixed.replace(", language: de", "").replace("[boss]", "[escalation]")
    assert problems_of(fixed) == [
        "inv.yaml:10: customers[1].contacts.0.email (id gamma): duplicate e-mail "
        "'noc@acme.example' (already a contact of customer 'acme' at line 5)"
    ]
    # A template folder the provider added is a language.
    extra = parse_inventory(
        fixed.replace("g@gamma.example}", "g@gamma.example, language: de}").replace(
            "{email: noc@acme.example}\n      - {email: g",
            "{email: n2@gamma.example}\n      - {email: g",
        ),
        source="inv.yaml",
        fmt="yaml",
        languages=frozenset({"en", "it", "de"}),
    )
    assert extra.customers[1].contacts[1].language == "de"


def test_customer_timezone_is_checked():
    good = GOOD.replace("    name: ACME\n", "    name: ACME\n    timezone: Europe/London\n")
    inv = parse_inventory(good, source="inv.yaml", fmt="yaml")
    assert inv.customers[0].timezone == "Europe/London"
    assert parse_inventory(GOOD, source="inv.yaml", fmt="yaml").customers[0].timezone is None
    for bad in ("Europe/Lundon", "../../etc/passwd", "''"):
        text = GOOD.replace("    name: ACME\n", f"    name: ACME\n    timezone: {bad}\n")
        problems = problems_of(text)
        assert problems[0].startswith("inv.yaml:4: customers[0].timezone"), problems
        assert "unknown time zone" in problems[0]


def test_customer_timezone_in_csv():
    text = "id,customer,customer_timezone,address\nn1,c1,America/New_York,192.0.2.1\n"
    inv = parse_inventory(text, source="inv.csv", fmt="csv")
    assert inv.customers[0].timezone == "America/New_York"
    problems = problems_of(text.replace("America/New_York", "America/Nowhere"), "csv")
    assert problems[0].startswith("inv.csv:2: customers[0].timezone"), problems


def test_inventories_are_parsed_by_libyaml():
    # libyaml comes with python3-yaml and PyYAML's wheels: nms must use it (the pure
    # Python parser took 26 s of CPU for a 100k-NTU file; libyaml a third of that).
    require(yaml.__with_libyaml__, "needs PyYAML built with libyaml")
    assert loader.YAML_PARSER == "libyaml"
    from yaml._yaml import CParser

    assert issubclass(loader._Loader, CParser)


HOSTILE = [
    GOOD + "  - id: dup\n    id: dup\n",
    "ntus: " + "[" * DEPTH + "]" * DEPTH,
    "ntus:\n" + "".join(" " * i + "a:\n" for i in range(1, 60)) + " " * 60 + "x\n",
    nested_attributes(MAX_DEPTH),
    nested_attributes(MAX_DEPTH + 1),
    BILLION_LAUGHS,
    "ntus: &a [*a]\n",
    "ntus: []\n? [a]\n: x\n",
    "ntus: [\n",
    "ntus: *nowhere\n",
    "ntus: []\n\x00 binary",
]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_the_pure_python_parser_gives_the_same_answers(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fallback where libyaml is absent keeps every guarantee, worded the same
    # (the two parsers word a syntax error differently: its file and line agree).
    def worded(problems: list[str]) -> list[str]:
        return [re.sub(r"not valid YAML: (?!character).*", "not valid YAML", p) for p in problems]

    with_c = problems_of(text)
    monkeypatch.setattr(loader, "_Loader", loader._PyLoader)
    assert worded(problems_of(text)) == worded(with_c)
    assert with_c  # each of these is refused


def test_contact_timezone_is_checked_and_defaults_to_the_customers():
    text = textwrap.dedent(
        """\
        customers:
          - id: acme
            name: ACME
            timezone: Europe/Rome
            contacts:
              - {email: noc@acme.example}
              - {email: ny@acme.example, timezone: America/New_York}
              - {email: bad@acme.example, timezone: Europe/Roma}
        ntus: []
        """
    )
    assert problems_of(text) == [
        "inv.yaml:8: customers[0].contacts.2.timezone (id acme): unknown time zone "
        "'Europe/Roma' (an IANA name, e.g. Europe/Rome or UTC)"
    ]
    fixed = parse_inventory(text.replace("Europe/Roma}", "UTC}"), source="inv.yaml", fmt="yaml")
    zones = [c.timezone for c in fixed.customers[0].contacts]
    # Unset: the reader's zone is the customer's (resolved when a mail is sent).
    assert zones == [None, "America/New_York", "UTC"]
