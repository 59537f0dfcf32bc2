"""The messages of the distributed bus and their encoding; pure, no I/O.

``encode(Message) -> bytes`` and ``decode(bytes) -> Message``. The modules, each one
part of the schema:

- ``messages``: the dataclasses (``Message`` and its payloads; the observation
  batches are ``nms.bus.batch.PingBatch`` / ``SnmpBatch``, as on the in-process bus).
- ``envelope``: the JSON object around every body, ``encode`` and ``decode``.
- ``observations``: the ``ping`` and ``snmp`` bodies (positional rows, the bulk).
- ``events``: the ``heartbeat``, ``ntu_state``, ``case`` and ``skip`` bodies.
- ``fields``: the checks of single values, and ``WireError``.

All times on the wire are integer microseconds since 1970-01-01 UTC: exact (a float
loses microseconds after 2^53), compact, and with no time-zone text to parse. IP
addresses are strings (``str()`` of the address).

``decode`` is strict because a message that reaches the detector changes customer
cases: bool is not an int, counts are not negative, a ping cannot receive more than it
sent, times are integers in datetime's range, unknown or duplicate fields are errors
(a schema change bumps ``SCHEMA_VERSION``; a mismatch must be loud, not half-read).
SNMP integers are only range-checked to what an agent can send (Integer32 up to
Counter64): they are raw readings, and one odd agent must not get a whole batch of
other NTUs rejected. Whatever the bytes, ``decode`` raises ``WireError`` and nothing
else; ``WireError.reason`` is one of ``REASONS`` and its message names the field, e.g.
``ping[3].address: '999.1.1.1' is not an IP address``.
"""

from nms.bus.wire.envelope import MAX_MESSAGE_BYTES, SCHEMA_VERSION, decode, encode
from nms.bus.wire.fields import REASONS, WireError
from nms.bus.wire.messages import (
    KINDS,
    CaseChange,
    Heartbeat,
    Message,
    NtuStateChange,
    Payload,
    SkipSet,
    payload_kind,
)

__all__ = [
    "KINDS",
    "MAX_MESSAGE_BYTES",
    "REASONS",
    "SCHEMA_VERSION",
    "CaseChange",
    "Heartbeat",
    "Message",
    "NtuStateChange",
    "Payload",
    "SkipSet",
    "WireError",
    "decode",
    "encode",
    "payload_kind",
]
