"""Upstream dependencies: what an NTU's ancestors say about its own failures. Pure.

Inventory entries (NTUs and upstream nodes) name a ``parent``; the chain of parents
is an entry's ancestors. ``upstream_verdict`` folds the ancestors' availability
states into the one verdict the availability machine (``nms.detector.availability``) needs:

    ancestor state                                        verdict
    down, recovering, or any status with its case open    down     (worst)
    suspect, or unknown whose last observation failed     pending
    up, or unknown never observed / last seen up          clear    (best)

The worst ancestor wins. ``pending`` is the ordering rule: a child whose probes fail
before its ancestors' verdict is known must wait for it - it never opens a case of
its own while any ancestor is suspect or unknown-after-failure. ``down`` makes a
failing child ``unreachable`` (covered by the ancestor's upstream incident).

The detector feeds the observations of one batch parents first (``depth`` order),
so a child failing in the same cycle as its parent already sees the parent's new
verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from nms.detector.availability import NtuState, Status, Upstream


def node_down_key(node_id: str) -> str:
    return f"node:{node_id}:down"


def customer_link_key(node_id: str, customer_id: str) -> str:
    """Dedup key of one affected customer's case linked to a node outage."""
    return f"{node_down_key(node_id)}:customer:{customer_id}"


@dataclass(frozen=True, slots=True)
class Verdict:
    upstream: Upstream
    blocker: str | None = None
    """With ``down``: the nearest ancestor whose outage covers the entry."""
    since: datetime | None = None
    """With ``clear``: the latest time an ancestor became up (its restoration)."""


def ancestor_verdict(state: NtuState) -> Upstream:
    """What one ancestor's state says about its descendants."""
    if state.case_open or state.status in (Status.DOWN, Status.RECOVERING):
        return Upstream.DOWN
    if state.status == Status.SUSPECT:
        return Upstream.PENDING
    if state.status == Status.UNREACHABLE:
        # Its own ancestor is down; that ancestor is in the chain too. On its own it
        # is a failure whose verdict is pending.
        return Upstream.PENDING
    if (
        state.status == Status.UNKNOWN
        and state.last_observation_at is not None
        and state.last_success_at != state.last_observation_at
    ):
        return Upstream.PENDING
    return Upstream.CLEAR


_RANK = {Upstream.CLEAR: 0, Upstream.PENDING: 1, Upstream.DOWN: 2}


def upstream_verdict(ancestors: Sequence[tuple[str, NtuState]]) -> Verdict:
    """Fold the ancestors (nearest first) into one verdict; the worst wins."""
    worst = Upstream.CLEAR
    blocker: str | None = None
    since: datetime | None = None
    for ident, state in ancestors:
        verdict = ancestor_verdict(state)
        if _RANK[verdict] > _RANK[worst]:
            worst = verdict
        if verdict == Upstream.DOWN and blocker is None:
            blocker = ident
        if state.status == Status.UP and (since is None or state.since > since):
            since = state.since
    if worst == Upstream.DOWN:
        return Verdict(Upstream.DOWN, blocker=blocker)
    if worst == Upstream.PENDING:
        return Verdict(Upstream.PENDING)
    return Verdict(Upstream.CLEAR, since=since)


def ancestors_of(ident: str, parents: Mapping[str, str | None]) -> list[str]:
    """The ancestors of ``ident``, nearest first (the inventory rejects cycles)."""
    chain: list[str] = []
    node = parents.get(ident)
    while node is not None and node not in chain and node != ident:
        chain.append(node)
        node = parents.get(node)
    return chain


def depth(ident: str, parents: Mapping[str, str | None]) -> int:
    return len(ancestors_of(ident, parents))
