"""Which probe worker probes which NTU: a hash of the NTU id modulo the shard count.

The hash is Prometheus' ``hashmod`` (the last 8 bytes of the MD5 of the id, big-endian,
modulo N), so a relabelling rule in Prometheus can pick the same NTUs as a shard does.
It depends on the id alone: adding or removing other NTUs never moves an NTU, and every
worker agrees without talking to the others. Changing N moves about (N-1)/N of them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
MAX_SHARDS = 1024


def hashmod(ident: str, modulus: int) -> int:
    """0 .. modulus-1, as Prometheus' ``hashmod`` relabel action computes it."""
    digest = hashlib.md5(ident.encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[8:], "big") % modulus


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` of ``count``, counted from 1 as written on the command line."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_SHARDS:
            raise ValueError(f"the shard count must be 1 to {MAX_SHARDS}, not {self.count}")
        if not 1 <= self.index <= self.count:
            raise ValueError(f"shard {self.index}/{self.count}: I must be 1 to {self.count}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"2/4"`` -> ``Shard(2, 4)``.

        Raises:
            ValueError: not ``I/N`` with 1 <= I <= N.
        """
        match = _SHARD.match(text)
        if match is None:
            raise ValueError(f"{text!r} is not I/N (e.g. 1/2: the first of two shards)")
        return cls(int(match.group(1)), int(match.group(2)))

    def owns(self, ident: str) -> bool:
        return hashmod(ident, self.count) == self.index - 1

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def slug(self) -> str:
        """For client ids and topics, where '/' separates levels."""
        return f"{self.index}of{self.count}"

    def __str__(self) -> str:
        return self.label
