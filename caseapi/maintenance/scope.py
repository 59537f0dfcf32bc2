"""Resolving a window's scope to NTU ids (pure: no database, no clock).

A scope names NTUs, nodes, customers and services. NTU ids cover those NTUs;
node ids cover the node (when it is an inventory row itself) and every row below
it through ``ntus.parent``, at any depth; customer ids cover all their NTUs;
service ids cover the NTUs carrying that service. The inventory rejects parent
cycles, but the walk keeps a visited set anyway, so a bad row can never hang it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

#: The scope lists, in the order the API shows them.
SCOPE_KINDS: Final = ("ntus", "nodes", "customers", "services")


@dataclass(frozen=True, slots=True)
class InventoryRow:
    """The four inventory columns scope resolution needs."""

    id: str
    customer_id: str
    service_id: str | None
    parent: str | None


@dataclass(slots=True)
class InventoryIndex:
    """Lookups over inventory rows: children, NTUs by customer and by service."""

    ids: set[str] = field(default_factory=set)
    customer_of: dict[str, str] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    by_customer: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    by_service: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def build(cls, rows: Iterable[InventoryRow]) -> InventoryIndex:
        index = cls()
        for row in rows:
            index.ids.add(row.id)
            index.customer_of[row.id] = row.customer_id
            index.by_customer[row.customer_id].append(row.id)
            if row.service_id is not None:
                index.by_service[row.service_id].append(row.id)
            if row.parent is not None:
                index.children[row.parent].append(row.id)
        return index

    def is_node(self, node_id: str) -> bool:
        """A known node: an inventory row, or an id that some row names as parent."""
        return node_id in self.ids or node_id in self.children

    def subtree(self, root: str) -> set[str]:
        """``root`` (if it is a row) and every row below it."""
        covered: set[str] = set()
        visited = {root}
        stack = [root]
        while stack:
            node = stack.pop()
            if node in self.ids:
                covered.add(node)
            for child in self.children.get(node, ()):
                if child not in visited:  # a cycle cannot loop forever
                    visited.add(child)
                    stack.append(child)
        return covered


def resolve(scope: Mapping[str, Sequence[str]], index: InventoryIndex) -> set[str]:
    """The NTU ids ``scope`` covers.

    NTU ids are covered even when the inventory no longer lists them (the window was
    announced for them; the detector may still know them).
    """
    covered: set[str] = set(scope.get("ntus", ()))
    for node in scope.get("nodes", ()):
        covered |= index.subtree(node)
    for customer in scope.get("customers", ()):
        covered.update(index.by_customer.get(customer, ()))
    for service in scope.get("services", ()):
        covered.update(index.by_service.get(service, ()))
    return covered


def unknown_ids(
    scope: Mapping[str, Sequence[str]], index: InventoryIndex, *, customers: set[str]
) -> dict[str, list[str]]:
    """The ids of ``scope`` that name nothing, per scope list (only non-empty lists)."""
    unknown = {
        "ntus": [ntu for ntu in scope.get("ntus", ()) if ntu not in index.ids],
        "nodes": [node for node in scope.get("nodes", ()) if not index.is_node(node)],
        "customers": [c for c in scope.get("customers", ()) if c not in customers],
        "services": [s for s in scope.get("services", ()) if s not in index.by_service],
    }
    return {kind: ids for kind, ids in unknown.items() if ids}
