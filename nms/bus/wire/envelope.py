"""The envelope of every bus message, and ``encode`` / ``decode``; pure, no I/O.

Every message is one compact JSON object (no spaces)::

    {"v":1,"k":"ping","src":"probe-1of2-3f9c2a","seq":17,"t":1767225600000000,"b":<body>}

``v`` is ``SCHEMA_VERSION`` (a decoder rejects any other), ``k`` the kind, ``src`` the
sending process instance and ``seq`` its message counter (together the dedupe key),
``t`` the time the message was made, ``b`` the body of its kind
(``nms.bus.wire.observations``, ``nms.bus.wire.events``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, NoReturn

from nms.bus.batch import PingBatch, SnmpBatch
from nms.bus.wire.events import CODECS
from nms.bus.wire.fields import (
    I63,
    WireError,
    check_keys,
    encode_time,
    integer,
    json_type,
    show,
    string,
    timestamp,
)
from nms.bus.wire.messages import Message, Payload, payload_kind
from nms.bus.wire.observations import (
    decode_ping,
    decode_snmp,
    encode_ping,
    encode_snmp,
    non_finite_rtts,
)

SCHEMA_VERSION = 1
MAX_MESSAGE_BYTES = 4 * 1024 * 1024

_SOURCE = re.compile(r"[A-Za-z0-9._-]{1,128}")
_ENVELOPE = frozenset({"v", "k", "src", "seq", "t", "b"})
_ENCODERS: dict[str, Callable[[Any], object]] = {
    "ping": encode_ping,
    "snmp": encode_snmp,
    **{codec.kind: codec.encode for codec in CODECS},
}
_DECODERS: dict[str, Callable[[object, str], Payload]] = {
    "ping": decode_ping,
    "snmp": decode_snmp,
    **{codec.kind: codec.decode for codec in CODECS},
}


def encode(message: Message) -> bytes:
    """The wire bytes of ``message``.

    Raises:
        WireError: what cannot be put on the wire: a source outside ``[A-Za-z0-9._-]``,
            a naive datetime, a non-finite RTT, a mixed or empty batch, or a result
            bigger than ``MAX_MESSAGE_BYTES`` (reason ``malformed``: split the batch).
    """
    if not isinstance(message.source, str) or not _SOURCE.fullmatch(message.source):
        raise WireError("field", f"src: {show(message.source)} is not [A-Za-z0-9._-]{{1,128}}")
    if type(message.seq) is not int or not 1 <= message.seq <= I63:
        raise WireError("field", f"seq: {show(message.seq)} is not an integer 1..2**63-1")
    payload = message.payload
    if isinstance(payload, PingBatch | SnmpBatch) and not payload.results:
        raise WireError("field", "b: an observation batch must not be empty")
    kind = payload_kind(payload)
    document = {
        "v": SCHEMA_VERSION,
        "k": kind,
        "src": message.source,
        "seq": message.seq,
        "t": encode_time(message.sent_at, "t"),
        "b": _ENCODERS[kind](payload),
    }
    try:
        text = json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        data = text.encode()
    except (ValueError, UnicodeEncodeError) as exc:
        raise WireError("field", _unencodable(kind, payload, exc)) from exc
    if len(data) > MAX_MESSAGE_BYTES:
        raise WireError(
            "malformed", f"{kind}: {len(data)} bytes, more than {MAX_MESSAGE_BYTES} (split it)"
        )
    return data


def _unencodable(kind: str, payload: Payload, exc: Exception) -> str:
    """Which field json.dumps refused: only RTTs can be non-finite floats."""
    found = non_finite_rtts(payload, kind) if isinstance(payload, PingBatch) else None
    return found or f"{kind}: cannot encode: {exc}"


def decode(data: bytes) -> Message:
    """The message in ``data``.

    Strict, because a message that reaches the detector changes customer cases.

    Raises:
        WireError: (and nothing else, whatever the bytes) ``data`` is not a message.
    """
    if len(data) > MAX_MESSAGE_BYTES:
        raise WireError("malformed", f"{len(data)} bytes, more than {MAX_MESSAGE_BYTES}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError("malformed", f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except WireError:
        raise
    except (ValueError, RecursionError) as exc:
        # RecursionError: deeply nested arrays ("[[[[...") exhaust json's recursion.
        raise WireError("malformed", f"not JSON: {show(str(exc), 80)}") from None
    if not isinstance(document, dict):
        raise WireError("malformed", f"not a JSON object but {json_type(document)}")
    if "v" not in document:
        raise WireError("version", "v: missing schema version")
    version = document["v"]
    if type(version) is not int or version != SCHEMA_VERSION:
        raise WireError("version", f"v: schema version {show(version)}, expected {SCHEMA_VERSION}")
    kind = document.get("k")
    decoder = _DECODERS.get(kind) if isinstance(kind, str) else None
    if decoder is None:
        raise WireError("kind", f"k: unknown kind {show(kind)}")
    assert isinstance(kind, str)
    check_keys(document, _ENVELOPE, "")
    source = string(document["src"], "src")
    if not _SOURCE.fullmatch(source):
        raise WireError("field", f"src: {show(source)} is not [A-Za-z0-9._-]{{1,128}}")
    return Message(
        source=source,
        seq=integer(document["seq"], "seq", 1, I63),
        sent_at=timestamp(document["t"], "t"),
        payload=decoder(document["b"], kind),
    )


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for name, value in pairs:
        if name in document:
            raise WireError("malformed", f"duplicate field {show(name)}")
        document[name] = value
    return document


def _no_constant(name: str) -> NoReturn:
    raise WireError("malformed", f"not JSON: {name} is not a JSON number")
