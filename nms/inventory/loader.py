"""The inventory file: customers and their NTUs, in YAML or CSV.

YAML::

    customers:
      - id: acme
        name: ACME Corp
        contacts:
          - {email: noc@acme.example, name: ACME NOC, language: it, roles: [notify, technical]}
    nodes:
      - {id: pop-lon, kind: pop, address: 192.0.2.1}
      - {id: agg-1, kind: aggregation, address: 192.0.2.2, parent: pop-lon}
    ntus:
      - {id: acme-hq, customer: acme, service_id: SVC-1001, site: Head office,
         address: 192.0.2.10, parent: agg-1}

A customer's ``contacts`` (``email``, ``name``, ``language``: a template folder such
as ``en`` or ``it``, ``roles``: ``notify`` (the default: gets case notifications),
``technical``, ``billing``, ``escalation``) each have an address no other contact has.

Upstream nodes (``kind``: pop, aggregation, supplier_circuit, other) are monitored
like NTUs (ICMP) and belong to no customer. NTUs and nodes name a ``parent`` (a node
or an NTU id), several levels deep; ids are unique across both; unknown parents and
cycles are rejected.

CSV (one NTU a row; customers are the distinct ``customer`` values, named by an
optional ``customer_name`` column)::

    id,customer,customer_name,service_id,site,address,parent

Loading validates everything and reports every problem at once, each with file,
line and field, so that an operator fixes a 5,000-line file in one pass. Nothing
here touches the database: a bad file never changes what is stored.

Whatever the file holds, loading ends in an ``Inventory`` or an ``InventoryError``,
in bounded time and memory: a file is read only up to ``MAX_FILE_BYTES``, and YAML
nesting (``MAX_DEPTH``) and the number of values once aliases are expanded
(``MAX_VALUES``) are counted while the YAML is composed, before any object is built
from it. So deep nesting cannot exhaust the stack and an alias bomb ("billion
laughs") is refused, while an anchor shared by many NTUs (``snmp: *defaults``) works.

libyaml (C) scans and parses the YAML when PyYAML has it (python3-yaml and the wheels
do), PyYAML's pure-Python parser otherwise (``YAML_PARSER`` says which; a debug log
too); the measuring composer above is Python in both cases. A 100k-NTU file: 18 s of
CPU and 0.8 GB instead of 49 s and 1.15 GB (``bench/inventory_file.py``).
"""

from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from pydantic import (
    BaseModel,
    ValidationError,
)

from caseapi.secrets import ENC_PREFIX, SecretBox
from nms.errors import InventoryError
from nms.inventory.model import (
    LANGUAGES_CONTEXT,
    SECRETS_CONTEXT,
    CustomerSpec,
    Inventory,
    NodeSpec,
    NtuSpec,
    ProfileSpec,
    ServiceSpec,
    SiteSpec,
)
from probes.observation import IPAddress

ENC_MARK: Final = ENC_PREFIX
#: The largest inventory file read: far above 100,000 NTUs with SNMP (about 15 MB).
MAX_FILE_BYTES: Final = 64 * 1024 * 1024
#: Levels of YAML nesting, the values inside the innermost list or mapping included;
#: a real inventory has six (top, section, entry, ``snmp``, ``wan``, its value).
MAX_DEPTH: Final = 32
#: YAML values (scalars, lists, mappings, keys included) counted with every alias
#: expanded; an NTU with SNMP settings is about 20.
MAX_VALUES: Final = 5_000_000

# --- YAML with line numbers ---------------------------------------------------------


class Lines(dict[str, Any]):
    """A mapping that remembers the line of itself and of each key."""

    line: int
    key_lines: dict[str, int]


class _Refused(yaml.MarkedYAMLError):
    """Well-formed YAML refused for its shape: too deep, too big, or recursive."""


class _Measuring(yaml.composer.Composer):
    """A composer that measures each node as it is composed (see the module
    docstring) and refuses a document beyond ``MAX_DEPTH`` or ``MAX_VALUES``.

    It is PyYAML's Python composer on purpose, also over libyaml's parser: libyaml's
    own composer (``CParser.get_single_node``) recurses in C with no depth limit and
    no hook, so a deeply nested file would overflow the C stack before any check."""

    def _start_measuring(self) -> None:
        self._depth = 0  # levels open now
        self._deepest = 0  # the deepest level reached (since the anchor being composed)
        self._values = 0  # values composed so far, aliases expanded
        # anchor -> (values, levels) of its node once composed. Only anchored nodes
        # are remembered: an alias can only name one. An alias to an anchor not
        # remembered yet is inside its own anchor.
        self._anchored: dict[str, tuple[int, int]] = {}

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[attr-defined]  # the parser's, mixed in
        mark: yaml.Mark = event.start_mark
        if isinstance(event, yaml.AliasEvent):
            node = super().compose_node(parent, index)
            measure = self._anchored.get(event.anchor or "")
            if measure is None:
                raise _Refused(None, None, "an alias inside its own anchor (recursive)", mark)
            values, levels = measure
            if self._depth + levels > MAX_DEPTH:
                raise _Refused(None, None, _TOO_DEEP, mark)
            self._deepest = max(self._deepest, self._depth + levels)
            self._count(values, mark)
            return node
        if self._depth >= MAX_DEPTH:
            raise _Refused(None, None, _TOO_DEEP, mark)
        anchor = getattr(event, "anchor", None)
        start, outer_deepest = self._values, self._deepest
        self._depth += 1
        self._deepest = max(self._deepest, self._depth) if anchor is None else self._depth
        self._count(1, mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if anchor is not None:
            levels = self._deepest - self._depth
            self._anchored[anchor] = (self._values - start, levels)
            self._deepest = max(outer_deepest, self._deepest)
        return node

    def _count(self, values: int, mark: yaml.Mark) -> None:
        self._values += values
        if self._values > MAX_VALUES:
            raise _Refused(None, None, _TOO_BIG, mark)


_TOO_DEEP = f"too deeply nested (more than {MAX_DEPTH} levels)"
_LIBYAML_TOO_DEEP = "exceeded maximum nesting depth"
_TOO_BIG = f"too large: more than {MAX_VALUES:,} values once aliases are expanded"


def _construct_mapping(loader: Any, node: yaml.MappingNode) -> Lines:
    loader.flatten_mapping(node)
    result = Lines()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise _Refused(
                None,
                None,
                "a key must be a plain value, not a list or mapping",
                key_node.start_mark,
            )
        key = loader.construct_object(key_node, deep=True)
        key = str(key)
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


class _PyLoader(_Measuring, yaml.SafeLoader):
    """PyYAML's pure-Python safe loader, measured (when libyaml is absent)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._start_measuring()


_PyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


_Loader: type[yaml.constructor.SafeConstructor] = _PyLoader
try:
    from yaml._yaml import CParser
except ImportError:  # pragma: no cover - libyaml comes with python3-yaml and the wheels
    pass
else:

    class _CLoader(_Measuring, CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
        """libyaml's scanner and parser (C, several times faster than PyYAML's) under
        the measuring composer and the safe constructor: the same guarantees as
        ``_PyLoader``. ``_Measuring`` comes first so that its node methods, not
        ``CParser``'s, compose the document; CParser only supplies the events."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
            self._start_measuring()

    _CLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
    _Loader = _CLoader

log = logging.getLogger("nms.inventory")
YAML_PARSER: Final = "libyaml" if _Loader is not _PyLoader else "pure Python"
"""Which YAML parser reads inventories: libyaml (C) when installed, else PyYAML's own."""


def line_of(item: object, loc: tuple[int | str, ...]) -> int | None:
    line = getattr(item, "line", None)
    node = item
    for part in loc:
        if isinstance(node, Lines) and isinstance(part, str):
            line = node.key_lines.get(part, line)
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            line = getattr(node, "line", line)
        else:
            break
    return line


@dataclass(slots=True)
class _Row:
    section: str  # one of _SECTIONS
    index: int
    line: int | None
    data: Any


class YamlProblemError(Exception):
    """A YAML text refused: not YAML, too deep, too big, recursive (``problem`` is
    ``source:line: message``)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def parse_yaml(text: str, source: str) -> Any:
    """Parse ``text`` (named ``source`` in messages) under the guards of this module:
    bounded depth and values, safe constructor, duplicate keys refused; mappings come
    back as ``Lines`` (their lines and their keys' lines, see ``line_of``).

    Shared by every YAML file ``nms`` reads (the inventory, the organisation file).

    Raises:
        YamlProblemError: The text is refused, with the line.
    """
    try:
        log.debug("parsing %s with the %s YAML parser", source, YAML_PARSER)
        return yaml.load(text, Loader=_Loader)  # type: ignore[arg-type]  # safe constructor
    except yaml.reader.ReaderError as exc:
        # Raised for the whole text before parsing, with a position, not a mark.
        line = text.count("\n", 0, exc.position) + 1
        raise YamlProblemError(
            f"{source}:{line}: not valid YAML: character #x{exc.character:02x} is not "
            "allowed (is it a binary file?)"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        refused = isinstance(exc, _Refused)
        if problem == _LIBYAML_TOO_DEEP:
            # libyaml's own limit (1,000 levels) trips before the composer's: the
            # same refusal, worded as ours.
            problem, refused = _TOO_DEEP, True
        kind = "" if refused else "not valid YAML: "
        raise YamlProblemError(f"{where}: {kind}{problem}") from None


def read_text(path: Path, what: str) -> str:
    """The text of ``path`` (at most ``MAX_FILE_BYTES``, UTF-8, universal newlines).

    Raises:
        YamlProblemError: Unreadable, too large (``what`` names what it should be) or not UTF-8.
    """
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise YamlProblemError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(data) > MAX_FILE_BYTES:
        limit = MAX_FILE_BYTES // 2**20
        raise YamlProblemError(f"{path}: too large: more than {limit} MiB (is it {what}?)")
    try:
        # As Path.read_text would read it: universal newlines.
        return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:
        raise YamlProblemError(f"{path}: not UTF-8 text ({exc.reason})") from exc


def _yaml_rows(text: str, source: str, problems: list[str]) -> list[_Row]:
    try:
        doc = parse_yaml(text, source)
    except YamlProblemError as exc:
        problems.append(exc.problem)
        return []
    if doc is None:
        problems.append(
            f"{source}:1: empty: expected a mapping with 'customers' and 'ntus' lists at the top"
        )
        return []
    if not isinstance(doc, Lines):
        problems.append(
            f"{source}:1: expected a mapping with 'customers' and 'ntus' lists at the top"
        )
        return []
    rows: list[_Row] = []
    for key in doc:
        if key not in _SECTIONS:
            problems.append(f"{source}:{doc.key_lines[key]}: {key}: unknown key")
    for section in _SECTIONS:
        items = doc.get(section)
        if items is None:
            if section == "ntus":
                problems.append(f"{source}:{doc.line}: ntus: missing (a list of NTUs)")
            continue
        if not isinstance(items, list):
            problems.append(f"{source}:{doc.key_lines[section]}: {section}: expected a list")
            continue
        for index, item in enumerate(items):
            line = getattr(item, "line", doc.key_lines[section])
            rows.append(_Row(section, index, line, item))
    return rows


_SECTIONS = ("customers", "profiles", "services", "sites", "nodes", "ntus")

_CSV_NTU_COLUMNS = {"id", "customer", "service_id", "site", "address", "parent"}
_CSV_EXTRA = {"customer_name", "contract_status", "customer_timezone"}


def _csv_rows(text: str, source: str, problems: list[str]) -> list[_Row]:
    reader = csv.DictReader(io.StringIO(text))
    try:
        header = reader.fieldnames or []
    except csv.Error as exc:
        problems.append(f"{source}:1: not valid CSV: {exc}")
        return []
    unknown = [c for c in header if c not in _CSV_NTU_COLUMNS | _CSV_EXTRA]
    for column in unknown:
        problems.append(f"{source}:1: {column}: unknown column")
    for required in ("id", "customer", "address"):
        if required not in header:
            problems.append(f"{source}:1: {required}: missing column")
    if unknown or problems:
        return []
    rows: list[_Row] = []
    customers: dict[str, tuple[int, dict[str, str]]] = {}
    try:
        records = list(reader)
    except csv.Error as exc:
        problems.append(f"{source}:{reader.line_num}: not valid CSV: {exc}")
        return []
    for index, record in enumerate(records):
        line = index + 2  # after the header; exact for files without quoted newlines
        if None in record:
            problems.append(f"{source}:{line}: more fields than the header has columns")
            continue
        values = {k: v.strip() for k, v in record.items() if v is not None and v.strip()}
        ntu = {k: v for k, v in values.items() if k in _CSV_NTU_COLUMNS}
        rows.append(_Row("ntus", index, line, ntu))
        cid = values.get("customer")
        if cid and cid not in customers:
            customer = {"id": cid, "name": values.get("customer_name", cid)}
            if "contract_status" in values:
                customer["contract_status"] = values["contract_status"]
            if "customer_timezone" in values:
                customer["timezone"] = values["customer_timezone"]
            customers[cid] = (line, customer)
    for index, (line, customer) in enumerate(customers.values()):
        rows.append(_Row("customers", index, line, customer))
    return rows


# --- validation ----------------------------------------------------------------------

_MODELS: dict[str, type[BaseModel]] = {
    "customers": CustomerSpec,
    "profiles": ProfileSpec,
    "services": ServiceSpec,
    "sites": SiteSpec,
    "nodes": NodeSpec,
    "ntus": NtuSpec,
}


def parse_inventory(
    text: str,
    *,
    source: str,
    fmt: Literal["yaml", "csv"],
    secrets: SecretBox | None = None,
    languages: frozenset[str] | None = None,
) -> Inventory:
    """Validate an inventory document; ``secrets`` opens ``enc:`` SNMP credentials.

    ``languages`` are those contacts may have (default: the shipped templates').

    Raises:
        InventoryError: listing every problem as ``source:line: field: message``.
    """
    inventory, _ = _parse(text, source=source, fmt=fmt, secrets=secrets, languages=languages)
    return inventory


_Entry = tuple[_Row, BaseModel]


def _parse(
    text: str,
    *,
    source: str,
    fmt: Literal["yaml", "csv"],
    secrets: SecretBox | None,
    languages: frozenset[str] | None,
) -> tuple[Inventory, list[_Entry]]:
    problems: list[str] = []
    rows = (_yaml_rows if fmt == "yaml" else _csv_rows)(text, source, problems)
    entries: list[_Entry] = []
    for row in rows:
        spec = _validate(row, source, problems, secrets=secrets, languages=languages)
        if spec is not None:
            entries.append((row, spec))
    return _assemble(entries, source, problems), entries


def _validate(
    row: _Row,
    source: str,
    problems: list[str],
    *,
    secrets: SecretBox | None,
    languages: frozenset[str] | None,
) -> BaseModel | None:
    """The spec of one entry, or None with its problems added to ``problems``."""
    model: type[BaseModel] = _MODELS[row.section]
    where = f"{row.section}[{row.index}]"
    if not isinstance(row.data, dict):
        problems.append(f"{source}:{row.line}: {where}: expected a mapping of fields")
        return None
    try:
        return model.model_validate(
            dict(row.data), context={SECRETS_CONTEXT: secrets, LANGUAGES_CONTEXT: languages}
        )
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            line = line_of(row.data, loc) or row.line
            name = ".".join(str(p) for p in loc)
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown key"
            elif err["type"] == "missing":
                message = "missing (required)"
            elif err["type"] == "string_pattern_mismatch":
                message = "must be 1-64 letters, digits or . _ : - (first a letter or digit)"
            label = row.data.get("id") if isinstance(row.data.get("id"), str) else None
            ident = f" (id {label})" if label else ""
            problems.append(f"{source}:{line}: {where}.{name}{ident}: {message}")
        return None


def _assemble(entries: list[_Entry], source: str, problems: list[str]) -> Inventory:
    """The inventory of validated entries (sections in ``_SECTIONS`` order), after the
    checks across entries.

    Raises:
        InventoryError: ``problems`` (given or found here), sorted by line.
    """
    customers: list[CustomerSpec] = []
    customer_rows: list[tuple[_Row, CustomerSpec]] = []
    profiles: list[ProfileSpec] = []
    repair_times: list[tuple[int | None, str, ServiceSpec | SiteSpec]] = []
    ntus: list[tuple[int | None, str, NtuSpec]] = []
    nodes: list[tuple[int | None, str, NtuSpec]] = []
    for row, spec in entries:
        where = f"{row.section}[{row.index}]"
        if isinstance(spec, NodeSpec):
            nodes.append((row.line, where, spec))
        elif isinstance(spec, CustomerSpec):
            customers.append(spec)
            customer_rows.append((row, spec))
        elif isinstance(spec, ProfileSpec):
            profiles.append(spec)
        elif isinstance(spec, ServiceSpec | SiteSpec):
            repair_times.append((row.line, where, spec))
        else:
            assert isinstance(spec, NtuSpec)
            ntus.append((row.line, where, spec))
    _cross_check(customers, ntus, nodes, source, problems)
    _check_contacts(customer_rows, source, problems)
    profile_ids = {p.id for p in profiles}
    for line, where, ntu in ntus:
        if ntu.profile is not None and ntu.profile not in profile_ids:
            problems.append(f"{source}:{line}: {where}.profile: unknown profile {ntu.profile!r}")
    seen: set[tuple[str, str]] = set()
    for line, where, entry in repair_times:
        kind = where.partition("[")[0]
        if (kind, entry.id) in seen:
            problems.append(f"{source}:{line}: {where}.id: duplicate {kind[:-1]} {entry.id!r}")
        seen.add((kind, entry.id))
    if problems:
        raise InventoryError(sorted(problems, key=_problem_line))
    return Inventory(
        customers=tuple(customers),
        ntus=tuple(n for _, _, n in ntus),
        source=source,
        profiles=tuple(profiles),
        nodes=tuple(n for _, _, n in nodes if isinstance(n, NodeSpec)),
        services=tuple(e for _, _, e in repair_times if isinstance(e, ServiceSpec)),
        sites=tuple(e for _, _, e in repair_times if isinstance(e, SiteSpec)),
    )


def _problem_line(problem: str) -> int:
    """The line a ``source:line: ...`` problem names (0 for the file as a whole), so
    that problems are listed top to bottom, as an operator fixes them."""
    _, _, rest = problem.partition(":")
    number, sep, _ = rest.partition(":")
    return int(number) if sep and number.isdigit() else 0


def _cross_check(
    customers: list[CustomerSpec],
    ntus: list[tuple[int | None, str, NtuSpec]],
    nodes: list[tuple[int | None, str, NtuSpec]],
    source: str,
    problems: list[str],
) -> None:
    customer_ids: set[str] = set()
    for customer in customers:
        if customer.id in customer_ids:
            problems.append(f"{source}: customers: duplicate id {customer.id!r}")
        customer_ids.add(customer.id)
    seen_ids: dict[str, int | None] = {}
    seen_addresses: dict[IPAddress, str] = {}
    for line, where, ntu in [*nodes, *ntus]:
        if ntu.id in seen_ids:
            problems.append(
                f"{source}:{line}: {where}.id: duplicate id {ntu.id!r} "
                f"(first at line {seen_ids[ntu.id]})"
            )
        seen_ids.setdefault(ntu.id, line)
        if ntu.address in seen_addresses:
            problems.append(
                f"{source}:{line}: {where}.address: {ntu.address} is already used by "
                f"NTU {seen_addresses[ntu.address]!r}"
            )
        seen_addresses.setdefault(ntu.address, ntu.id)
        if not isinstance(ntu, NodeSpec) and ntu.customer not in customer_ids:
            problems.append(f"{source}:{line}: {where}.customer: unknown customer {ntu.customer!r}")
    entries = [*nodes, *ntus]
    parents = {ntu.id: ntu.parent for _, _, ntu in entries}
    for line, where, ntu in entries:
        if ntu.parent is not None and ntu.parent not in parents:
            problems.append(f"{source}:{line}: {where}.parent: unknown parent {ntu.parent!r}")
    for line, where, ntu in entries:
        chain = [ntu.id]
        node = ntu.parent
        while node is not None and node in parents:
            if node in chain:
                loop = " -> ".join([*chain[chain.index(node) :], node])
                if node == ntu.id:
                    problems.append(f"{source}:{line}: {where}.parent: cycle {loop}")
                break
            chain.append(node)
            node = parents[node]


def _check_contacts(
    customers: list[tuple[_Row, CustomerSpec]], source: str, problems: list[str]
) -> None:
    """An e-mail address names one contact: a sender's mail must name one customer."""
    seen: dict[str, tuple[str, int | None]] = {}
    for row, customer in customers:
        for index, contact in enumerate(customer.contacts):
            line = line_of(row.data, ("contacts", index, "email")) or row.line
            where = f"customers[{row.index}].contacts.{index}.email (id {customer.id})"
            first = seen.get(contact.email)
            if first is not None:
                owner, first_line = first
                problems.append(
                    f"{source}:{line}: {where}: duplicate e-mail {contact.email!r} "
                    f"(already a contact of customer {owner!r} at line {first_line})"
                )
                continue
            seen[contact.email] = (customer.id, line)


def load_inventory(
    path: Path,
    *,
    secrets: SecretBox | None = None,
    languages: frozenset[str] | None = None,
    cache: InventoryCache | None = None,
) -> Inventory:
    """Read and validate ``path`` (``.csv`` is CSV, anything else YAML).

    ``secrets`` opens the ``enc:`` values of SNMP credentials (``nms secrets encrypt``).
    ``cache``, kept between loads of the same file, makes a reload that changed a few
    entries of a large YAML file parse only those (``InventoryCache``).

    Raises:
        InventoryError: every problem, with file, line and field.
    """
    try:
        text = read_text(path, "an inventory")
    except YamlProblemError as exc:
        raise InventoryError([exc.problem]) from exc
    fmt: Literal["yaml", "csv"] = "csv" if path.suffix.lower() == ".csv" else "yaml"
    if cache is None or fmt == "csv":
        return parse_inventory(
            text, source=str(path), fmt=fmt, secrets=secrets, languages=languages
        )
    return cache.parse(text, source=str(path), secrets=secrets, languages=languages)


# --- reloads: parse what changed ------------------------------------------------------

#: Above this many changed entries a reload parses the whole file (as fast, then).
MAX_CHANGED_ENTRIES: Final = 2_000

# Line starts are found by their "\n" (a literal first character: the regex engine
# skips to it, where "^" in MULTILINE mode tries every position of a 15 MB file).
_TOP_LINE = re.compile(r"\n([^ \n#][^\n]*)")
_FIRST_TOP_LINE = re.compile(r"([^ \n#][^\n]*)")
_SECTION_KEY = re.compile(r"([A-Za-z_]+):[ ]*(?:#[^\n]*)?")
_FIRST_ITEM = re.compile(r"^( *)-(?: |$)", re.MULTILINE)
_CONTENT = re.compile(r"^ *[^ \n#]", re.MULTILINE)


@dataclass(slots=True)
class _Chunk:
    """One entry of a section as text: its item line and the lines under it."""

    section: str
    index: int
    text: str
    start: int
    """Offset of its first character in the file."""


def _chunks(text: str) -> list[_Chunk] | None:
    """The entries of a YAML inventory as text, or None when the file is not laid out
    as plain block lists under top-level section keys (then it is parsed whole).

    Plain means: at column 0 only ``section:`` keys (and comments), each section a
    block list whose items start with ``- `` at one indent, every other line of it
    indented further (or a comment, or blank). This only splits the text; whether
    each piece is valid YAML is for the parser to say.
    """
    first_line = _FIRST_TOP_LINE.match(text)
    tops = [*([first_line] if first_line else []), *_TOP_LINE.finditer(text)]
    if not tops or _CONTENT.search(text, 0, tops[0].start(1)):
        return None
    chunks: list[_Chunk] = []
    seen: set[str] = set()
    for number, top in enumerate(tops):
        key = _SECTION_KEY.fullmatch(top.group(1))
        if key is None or key.group(1) not in _SECTIONS or key.group(1) in seen:
            return None
        section = key.group(1)
        seen.add(section)
        begin = top.end() + 1
        end = tops[number + 1].start(1) if number + 1 < len(tops) else len(text)
        first = _FIRST_ITEM.search(text, begin, end)
        if first is None:
            if _CONTENT.search(text, begin, end):
                return None  # not a block list (e.g. ``ntus: []`` on the next line)
            continue
        if _CONTENT.search(text, begin, first.start()):
            return None
        indent = len(first.group(1))
        # A line at the items' indent or less that does not start an item: not plain.
        # (The first line is an item; the others are found after their "\n".)
        stray = re.compile(rf"\n(?! {{{indent}}}-(?: |$))(?: {{0,{indent}}})[^ \n#]", re.MULTILINE)
        if stray.search(text, first.start(), end):
            return None
        item = re.compile(rf"\n {{{indent}}}-(?: |$)", re.MULTILINE)
        starts = [first.start()]
        starts += [m.start() + 1 for m in item.finditer(text, first.start(), end)]
        for index, start in enumerate(starts):
            stop = starts[index + 1] if index + 1 < len(starts) else end
            chunks.append(_Chunk(section, index, text[start:stop], start))
    return chunks


_CROSS_CHECKED: Final = ("id", "customer", "address", "parent", "profile")
"""The fields of an NTU that the checks across entries read (``_assemble``)."""


@dataclass(slots=True)
class _Known:
    spec: BaseModel
    data: Any
    """The parsed mapping, kept for customers only (their contacts' lines)."""


@dataclass
class InventoryCache:
    """What the last load of one YAML inventory file validated, entry by entry.

    ``parse`` splits the new text into its entries (``_chunks``) and parses and
    validates only those whose text is new, reusing the others' specs: a reload
    that changes one NTU of 100,000 costs milliseconds of YAML instead of seconds.
    The checks across entries (ids, addresses, parents, customers, profiles) run
    on the whole result every time. The whole file is parsed as before when the
    cache is empty, when the layout is not plain block lists, when an entry that
    defines a YAML anchor (``&name``) changed, when the file has encrypted values
    (their keys may have changed), when many entries changed, and whenever the
    quick path finds any problem - so every message is the full parse's.
    """

    _known: dict[tuple[str, str], _Known] = field(default_factory=dict)
    _order: list[tuple[str, str]] = field(default_factory=list)
    """The entries' keys in ``_known`` in the order of the file last loaded."""
    _last: Inventory | None = None
    """The inventory last loaded (of ``_order``)."""
    _anchors: frozenset[str] = frozenset()
    _languages: frozenset[str] | None = None
    hits: int = 0
    """Entries reused by the last ``parse`` (0: it parsed the whole file)."""

    def parse(
        self,
        text: str,
        *,
        source: str,
        secrets: SecretBox | None,
        languages: frozenset[str] | None,
    ) -> Inventory:
        """As ``parse_inventory(text, fmt="yaml", ...)``, reusing what is unchanged.

        Raises:
            InventoryError: listing every problem as ``source:line: field: message``.
        """
        chunks = _chunks(text)
        encrypted = ENC_MARK in text
        quick = None
        if chunks is not None and self._known and languages == self._languages and not encrypted:
            quick = self._quick(chunks, source, secrets=secrets, languages=languages)
        if quick is not None:
            return quick
        self.hits = 0
        self._known.clear()
        self._order, self._last = [], None
        inventory, entries = _parse(
            text, source=source, fmt="yaml", secrets=secrets, languages=languages
        )
        if chunks is not None and not encrypted:
            self._remember(chunks, entries, text, languages, inventory)
        return inventory

    def _remember(
        self,
        chunks: list[_Chunk],
        entries: list[_Entry],
        text: str,
        languages: frozenset[str] | None,
        inventory: Inventory,
    ) -> None:
        """Key each entry by its text, if the split agrees with the parser's entries."""
        by_place = {(row.section, row.index): (row, spec) for row, spec in entries}
        if len(by_place) != len(chunks):
            return
        known: dict[tuple[str, str], _Known] = {}
        line, offset = 1, 0
        for chunk in chunks:
            found = by_place.get((chunk.section, chunk.index))
            if found is None:
                return
            line += text.count("\n", offset, chunk.start)
            offset = chunk.start
            row, spec = found
            if row.line != line:
                return  # the parser saw this entry start elsewhere: not ours to split
            data = row.data if chunk.section == "customers" else None
            known[(chunk.section, chunk.text)] = _Known(spec, data)
        self._known = known
        self._order = [(c.section, c.text) for c in chunks]
        self._last = inventory
        self._anchors = frozenset(c.text for c in chunks if "&" in c.text)
        self._languages = languages

    def _quick(
        self,
        chunks: list[_Chunk],
        source: str,
        *,
        secrets: SecretBox | None,
        languages: frozenset[str] | None,
    ) -> Inventory | None:
        """The inventory from the known entries and the changed ones alone; None
        where the whole file must be parsed."""
        anchors = frozenset(c.text for c in chunks if "&" in c.text)
        if anchors != self._anchors or not any(c.section == "ntus" for c in chunks):
            return None  # (no NTUs: the whole parse says what is missing)
        changed = [c for c in chunks if (c.section, c.text) not in self._known]
        if len(changed) > MAX_CHANGED_ENTRIES:
            return None
        parsed = self._parse_changed(changed, [c for c in chunks if "&" in c.text], source)
        if parsed is None:
            return None
        problems: list[str] = []
        fresh: dict[int, _Known] = {}
        for chunk, data in zip(changed, parsed, strict=True):
            row = _Row(chunk.section, chunk.index, getattr(data, "line", None), data)
            spec = _validate(row, source, problems, secrets=secrets, languages=languages)
            if spec is None:
                return None
            fresh[id(chunk)] = _Known(spec, data if chunk.section == "customers" else None)
        keys = [(c.section, c.text) for c in chunks]
        patched, replaced = self._patched(keys, chunks, fresh, source)
        if patched is not None:
            for key in replaced:
                del self._known[key]
            for chunk in changed:
                self._known[(chunk.section, chunk.text)] = fresh[id(chunk)]
            self._order, self._last = keys, patched
            self.hits = len(chunks) - len(changed)
            return patched
        by_section: dict[str, list[_Entry]] = {section: [] for section in _SECTIONS}
        known: dict[tuple[str, str], _Known] = {}
        for chunk in chunks:
            entry = fresh.get(id(chunk)) or self._known[(chunk.section, chunk.text)]
            row = _Row(chunk.section, chunk.index, None, entry.data)
            by_section[chunk.section].append((row, entry.spec))
            known[(chunk.section, chunk.text)] = entry
        entries = [e for section in _SECTIONS for e in by_section[section]]
        try:
            inventory = _assemble(entries, source, problems)
        except InventoryError:
            return None
        self._known, self._order, self._last = known, keys, inventory
        self.hits = len(chunks) - len(changed)
        return inventory

    def _patched(
        self,
        keys: list[tuple[str, str]],
        chunks: list[_Chunk],
        fresh: dict[int, _Known],
        source: str,
    ) -> tuple[Inventory | None, list[tuple[str, str]]]:
        """The last inventory with the changed NTUs' new specs in their places, when
        the checks across entries cannot answer otherwise than they did for it: every
        other entry the same text in the same place, and every changed one an NTU
        that keeps its id, customer, address, parent and profile (a site, a service,
        probe settings changed), and the keys of the entries replaced. None:
        ``_assemble`` decides.

        A reload that changes a few NTUs then costs what changed, not 100,000 specs
        sorted and checked again.
        """
        last = self._last
        if last is None or last.source != source or len(keys) != len(self._order):
            return None, []
        ntus = list(last.ntus)
        replaced: list[tuple[str, str]] = []
        for place, (key, before) in enumerate(zip(keys, self._order, strict=True)):
            if key == before:
                continue
            chunk = chunks[place]
            entry = fresh.get(id(chunk))
            old = self._known.get(before)
            if entry is None or old is None or chunk.section != "ntus" or before[0] != "ntus":
                return None, []  # moved, or not an NTU
            new_spec, old_spec = entry.spec, old.spec
            if not (
                isinstance(new_spec, NtuSpec)
                and type(new_spec) is type(old_spec)
                and chunk.index < len(ntus)
                and ntus[chunk.index] is old_spec
                and all(getattr(new_spec, f) == getattr(old_spec, f) for f in _CROSS_CHECKED)
            ):
                return None, []
            ntus[chunk.index] = new_spec
            replaced.append(before)
        patched = Inventory(
            customers=last.customers,
            ntus=tuple(ntus),
            source=last.source,
            profiles=last.profiles,
            nodes=last.nodes,
            services=last.services,
            sites=last.sites,
        )
        return patched, replaced

    @staticmethod
    def _parse_changed(
        changed: list[_Chunk], anchored: list[_Chunk], source: str
    ) -> list[Any] | None:
        """The parsed items of ``changed``, in order, with the entries that define
        anchors before them (an alias names an earlier anchor); None on any problem."""
        if not changed:
            return []
        wanted = {id(c) for c in changed}
        pieces = sorted({id(c): c for c in [*anchored, *changed]}.values(), key=lambda c: c.start)
        lines: list[str] = []
        section = None
        for chunk in pieces:
            if chunk.section != section:
                section = chunk.section
                lines.append(f"{section}:\n")
            lines.append(chunk.text if chunk.text.endswith("\n") else chunk.text + "\n")
        try:
            doc = parse_yaml("".join(lines), source)
        except YamlProblemError:
            return None
        if not isinstance(doc, dict):
            return None
        items: dict[str, list[Any]] = {}
        for name, value in doc.items():
            if not isinstance(value, list):
                return None
            items[name] = list(value)
        found: list[Any] = []
        for chunk in pieces:
            queue = items.get(chunk.section)
            if not queue:
                return None
            item = queue.pop(0)
            if id(chunk) in wanted:
                found.append(item)
        if any(items.values()):
            return None
        return found
