"""What the board shows of the probe shards, and how the embedding process tells it.

The case API knows nothing of the probes: the process that runs them (``nms``) puts
a ``ProbeShards`` callable on ``app.state.probe_shards`` (``caseapi.app.configure_board``);
without one the board says the shards are not known to this process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeShard:
    """One probe shard as its process last heard of it."""

    shard: str
    """``I/N`` in the distributed wiring, ``local`` for ``nms run``."""
    worker: str
    """The process probing it (``nms run``, a worker's bus name)."""
    up: bool
    """Sweeping (a recent cycle or heartbeat)."""
    last_seen: datetime | None
    """Its latest cycle or heartbeat (aware UTC); ``None``: never."""
    ntus: int
    """Targets it probes."""


class ProbeShards(Protocol):
    """Returns the shards now (cheap: called on every board render)."""

    def __call__(self) -> Sequence[ProbeShard]: ...
