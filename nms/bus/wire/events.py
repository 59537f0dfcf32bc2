"""The bodies of the small, rare kinds: ``heartbeat``, ``ntu_state``, ``case``, ``skip``.

Each body is an object named like the dataclass fields, in their order (``skip`` has
``ntu_ids``, a sorted list, and ``at``). One ``ObjectCodec`` per kind, a table of its
fields, both encodes and decodes it, so a field is declared once for both directions.
Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from nms.bus.wire.fields import (
    boolean,
    count,
    encode_optional_time,
    encode_time,
    fail,
    json_list,
    json_object,
    key,
    optional_of,
    show,
    string,
    timestamp,
)
from nms.bus.wire.messages import CaseChange, Heartbeat, NtuStateChange, Payload, SkipSet

_SHARD = re.compile(r"([1-9][0-9]{0,5})/([1-9][0-9]{0,5})")


def _as_is(value: object, path: str) -> object:
    return value


@dataclass(frozen=True, slots=True)
class BodyField:
    """One field of an object body: its name and how it is checked and written."""

    name: str
    decode: Callable[[object, str], Any]
    encode: Callable[[Any, str], object] = _as_is


@dataclass(frozen=True, slots=True)
class ObjectCodec:
    """Encodes and decodes one kind whose body is an object of ``fields``.

    Raises:
        TypeError: (when built) ``fields`` do not name the dataclass's fields in order.
    """

    kind: str
    make: type[Payload]
    fields: tuple[BodyField, ...]
    keys: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        declared = tuple(f.name for f in dataclasses.fields(self.make))
        if tuple(f.name for f in self.fields) != declared:
            raise TypeError(f"{self.kind}: body fields must be {declared}")
        object.__setattr__(self, "keys", frozenset(declared))

    def encode(self, payload: Payload) -> dict[str, object]:
        """The body of ``payload``; raises ``WireError`` for what cannot be written."""
        kind = self.kind
        return {f.name: f.encode(getattr(payload, f.name), f"{kind}.{f.name}") for f in self.fields}

    def decode(self, body: object, kind: str) -> Payload:
        """The payload in ``body``; raises ``WireError`` naming the field."""
        b = json_object(body, kind, self.keys)
        return self.make(**{f.name: f.decode(b[f.name], f"{kind}.{f.name}") for f in self.fields})


def _shard(value: object, path: str) -> str:
    shard = string(value, path)
    match = _SHARD.fullmatch(shard)
    if match is None or int(match[1]) > int(match[2]):
        fail(path, f"{show(shard)} is not I/N with 1 <= I <= N")
    return shard


def _key_set(value: object, path: str) -> frozenset[str]:
    return frozenset(key(v, f"{path}[{i}]") for i, v in enumerate(json_list(value, path)))


def _sorted(value: Iterable[str], path: str) -> list[str]:
    return sorted(value)  # a set has no order: sorted, so equal sets are equal bytes


_OPTIONAL_KEY = optional_of(key)

HEARTBEAT = ObjectCodec(
    "heartbeat",
    Heartbeat,
    (
        BodyField("shard", _shard),
        BodyField("alive", boolean),
        *(
            BodyField(name, count)
            for name in (
                "icmp_targets",
                "snmp_targets",
                "cycles",
                "overruns",
                "buffered",
                "dropped",
            )
        ),
    ),
)
NTU_STATE = ObjectCodec(
    "ntu_state",
    NtuStateChange,
    (
        BodyField("ntu_id", key),
        BodyField("status", key),
        BodyField("previous", key),
        BodyField("at", timestamp, encode_time),
        BodyField("outage_start", optional_of(timestamp), encode_optional_time),
        BodyField("case_ref", _OPTIONAL_KEY),
    ),
)
CASE = ObjectCodec(
    "case",
    CaseChange,
    (
        BodyField("ref", key),
        BodyField("event_id", count),
        BodyField("kind", key),
        BodyField("status", key),
        BodyField("priority", key),
        BodyField("ntu_id", _OPTIONAL_KEY),
        BodyField("customer_id", _OPTIONAL_KEY),
        BodyField("at", timestamp, encode_time),
    ),
)
SKIP = ObjectCodec(
    "skip",
    SkipSet,
    (BodyField("ntu_ids", _key_set, _sorted), BodyField("at", timestamp, encode_time)),
)
CODECS = (HEARTBEAT, NTU_STATE, CASE, SKIP)
