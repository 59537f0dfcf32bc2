"""What travels from the probes to the detector: one batch of results of one kind.

The kind is part of the type, so a consumer hands any batch to the detector's one
``observe(batch)`` without looking inside it.
"""

from __future__ import annotations

from dataclasses import dataclass

from probes.observation import PingResult, SnmpResult


@dataclass(frozen=True, slots=True)
class PingBatch:
    """ICMP results of one sweep (or part of one)."""

    results: tuple[PingResult, ...]


@dataclass(frozen=True, slots=True)
class SnmpBatch:
    """SNMP results of one poll round (or part of one)."""

    results: tuple[SnmpResult, ...]


Batch = PingBatch | SnmpBatch
