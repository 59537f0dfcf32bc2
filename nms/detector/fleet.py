"""The tracked entries (NTUs and upstream nodes) and their topology. No I/O.

``Fleet`` keeps one ``Tracked`` per inventory entry, resumes entries from their saved
state, keeps the state of entries that leave the inventory (one that comes back
resumes where it was), and answers the topology questions of the engine: the
upstream verdict of an entry, the order in which a batch is applied (parents
first), the NTUs behind a node outage.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from caseapi.incidents import ntu_down_key
from nms.detector import degradation as quality
from nms.detector import topology
from nms.detector.availability import NtuState, Status
from nms.detector.settings import DegradedSettings
from nms.detector.store import StoredState
from nms.detector.tracked import Tracked
from nms.errors import InventoryError
from nms.inventory.model import Inventory, NodeSpec, NtuSpec
from probes.observation import PingResult, SnmpResult

Result = PingResult | SnmpResult


def profile_thresholds(
    inventory: Inventory, defaults: DegradedSettings
) -> dict[str, quality.Thresholds]:
    """P2 thresholds per profile id ("" = the defaults).

    Raises:
        InventoryError: a profile whose values contradict each other or the defaults.
    """
    result = {"": defaults.thresholds()}
    problems = []
    for profile in inventory.profiles:
        try:
            merged = DegradedSettings.model_validate(defaults.model_dump() | profile.overrides())
            result[profile.id] = merged.thresholds()
        except ValueError as exc:
            problems.append(f"{inventory.source}: profiles.{profile.id}: {exc}")
    if problems:
        raise InventoryError(problems)
    return result


def down_key(spec: NtuSpec) -> str:
    """Dedup key of an entry's own P1: the NTU's case or the node's upstream incident."""
    if isinstance(spec, NodeSpec):
        return topology.node_down_key(spec.id)
    return ntu_down_key(spec.id)


class Fleet:
    """Every tracked entry, by id, with the inventory's topology."""

    def __init__(self) -> None:
        self.ntus: dict[str, Tracked] = {}
        self.nodes: dict[str, Tracked] = {}
        self._resume: dict[str, StoredState] = {}
        """Saved states of entries not tracked (yet, or any more)."""
        self._parents: dict[str, str | None] = {}
        self._depth: dict[str, int] = {}

    def resume(self, stored: Mapping[str, StoredState]) -> None:
        """Entries of the next ``set_inventory`` not tracked yet resume from ``stored``."""
        self._resume.update(stored)

    def set_inventory(
        self,
        inventory: Inventory,
        thresholds: dict[str, quality.Thresholds],
        initial: NtuState,
    ) -> list[Tracked]:
        """Track exactly the entries of ``inventory``, keeping the state of known ones.

        Args:
            inventory: the entries to track.
            thresholds: P2 thresholds by profile id (``profile_thresholds``).
            initial: the state of an entry seen for the first time (``unknown``).

        Returns:
            The entries not tracked before this call (new, resumed or back).
        """
        added: list[Tracked] = []
        self.ntus = self._track(inventory.ntus, self.ntus, thresholds, initial, added)
        self.nodes = self._track(inventory.nodes, self.nodes, thresholds, initial, added)
        parents = inventory.parents()
        if parents != self._parents:  # (a reload that moved no entry keeps the depths)
            self._parents = parents
            self._depth = {i: topology.depth(i, parents) for i in parents}
        return added

    def _track(
        self,
        specs: Iterable[NtuSpec],
        known: dict[str, Tracked],
        thresholds: dict[str, quality.Thresholds],
        initial: NtuState,
        added: list[Tracked],
    ) -> dict[str, Tracked]:
        tracked: dict[str, Tracked] = {}
        for spec in specs:
            limits = thresholds[spec.profile or ""]
            current = known.get(spec.id)
            if current is not None:
                current.spec, current.thresholds = spec, limits
                tracked[spec.id] = current
                continue
            stored = self._resume.get(spec.id)
            if stored is None:
                tracked[spec.id] = Tracked(spec=spec, thresholds=limits, state=initial)
            else:
                tracked[spec.id] = Tracked.resumed(spec, limits, stored)
            added.append(tracked[spec.id])
        if len(tracked) != len(known) or len(added):  # (else the same ids: none left)
            for gone in known.keys() - tracked.keys():
                self._resume[gone] = known[gone].stored()
        return tracked

    def lookup(self, ident: str) -> Tracked | None:
        return self.ntus.get(ident) or self.nodes.get(ident)

    def everything(self) -> Iterator[Tracked]:
        """Nodes first, then NTUs."""
        yield from self.nodes.values()
        yield from self.ntus.values()

    def ordered(self, results: Sequence[Result]) -> list[Result]:
        """Parents first: a child sees its ancestors' verdict of this same cycle."""
        return sorted(results, key=lambda r: self._depth.get(r.key, 0))

    def verdict(self, ident: str) -> topology.Verdict:
        """What the ancestors of ``ident`` say about its failures."""
        chain = []
        for ancestor in topology.ancestors_of(ident, self._parents):
            found = self.lookup(ancestor)
            if found is not None:
                chain.append((ancestor, found.state))
        return topology.upstream_verdict(chain)

    def affected(self, node_id: str) -> dict[str, str]:
        """The NTUs unreachable behind ``node_id``: NTU id -> customer id."""
        return {
            t.spec.id: t.spec.customer
            for t in self.ntus.values()
            if t.state.status == Status.UNREACHABLE and t.upstream.blocked_by == node_id
        }

    def parent_key(self, blocker: str | None) -> str | None:
        """Dedup key of the case that covered an NTU while it was unreachable: the
        node's upstream incident, or the own case of an NTU that is its parent."""
        if blocker is None:
            return None
        found = self.lookup(blocker)
        return down_key(found.spec) if found is not None else None

    def counts(self) -> dict[Status, int]:
        """NTUs by status (nodes not included)."""
        counts = dict.fromkeys(Status, 0)
        for tracked in self.ntus.values():
            counts[tracked.state.status] += 1
        return counts
