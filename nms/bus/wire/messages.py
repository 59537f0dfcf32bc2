"""The messages of the distributed bus, as the code holds them (the wire is elsewhere).

A ``Message`` is an envelope (who sent it, its number, when) around one payload: a
batch of observations (``PingBatch``, ``SnmpBatch``, the same types the in-process bus
carries) or one of the small, rare kinds below.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from nms.bus.batch import PingBatch, SnmpBatch


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A probe worker's periodic sign of life; ``alive=False`` is also its MQTT will."""

    shard: str  # "1/2"
    alive: bool  # False: the worker stopped (clean stop or the broker-sent will)
    icmp_targets: int
    snmp_targets: int
    cycles: int
    overruns: int
    buffered: int  # batches waiting for the broker
    dropped: int  # batches dropped because the buffer was full


@dataclass(frozen=True, slots=True)
class NtuStateChange:
    """The detector moved an NTU to a new availability status."""

    ntu_id: str
    status: str  # nms.detector.availability.Status value, e.g. "down"
    previous: str
    at: datetime
    outage_start: datetime | None
    case_ref: str | None


@dataclass(frozen=True, slots=True)
class CaseChange:
    """An entry of a case timeline (opened, solved, ...)."""

    ref: str
    event_id: int
    kind: str
    status: str
    priority: str
    ntu_id: str | None
    customer_id: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class SkipSet:
    """The NTUs in a 'skip' maintenance window: probes leave them alone."""

    ntu_ids: frozenset[str]
    at: datetime


Payload = PingBatch | SnmpBatch | Heartbeat | NtuStateChange | CaseChange | SkipSet

_KIND_OF: dict[type, str] = {
    PingBatch: "ping",
    SnmpBatch: "snmp",
    Heartbeat: "heartbeat",
    NtuStateChange: "ntu_state",
    CaseChange: "case",
    SkipSet: "skip",
}
KINDS = tuple(_KIND_OF.values())


def payload_kind(payload: Payload) -> str:
    """The wire kind of ``payload``: one of ``KINDS``."""
    return _KIND_OF[type(payload)]


@dataclass(frozen=True, slots=True)
class Message:
    """One bus message; ``(source, seq)`` identifies it for de-duplication."""

    source: str  # sending process instance, e.g. "probe-1of2-3f9c2a"; [A-Za-z0-9._-]
    seq: int  # per source, from 1, +1 per message
    sent_at: datetime  # UTC
    payload: Payload

    @property
    def kind(self) -> str:
        """``ping``, ``snmp``, ``heartbeat``, ``ntu_state``, ``case`` or ``skip``."""
        return payload_kind(self.payload)
