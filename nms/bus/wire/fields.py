"""The field checks of the wire codec: one JSON value to one checked Python value.

Every check takes the value and its path in the message (``ping[3].address``), and
either returns the value as the dataclasses hold it or raises ``WireError`` naming the
path. ``encode_time`` is the one encoding-side conversion (times are integer
microseconds since 1970-01-01 UTC on the wire). Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, TypeVar

from probes.observation import IPAddress

REASONS = ("malformed", "version", "kind", "field")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
MIN_US = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // _MICROSECOND
MAX_US = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - _EPOCH) // _MICROSECOND
U32 = 2**32 - 1
I63 = 2**63 - 1
# An SNMP integer as an agent can send it: Integer32 (signed) up to Counter64.
_SNMP_MIN = -(2**31)
_SNMP_MAX = 2**64 - 1
# str() and ip_address() of an address cost more than the rest of a result's coding;
# the same targets come back every cycle, so both directions are remembered (bounded:
# a cache is cleared when full).
_ADDRESS_CACHE_MAX = 100_000
_ADDRESS_TEXT: dict[IPAddress, str] = {}
_ADDRESS_VALUE: dict[str, IPAddress] = {}

T = TypeVar("T")


class WireError(ValueError):
    """Bytes that are not a valid message; ``reason`` is one of ``REASONS``.

    ``malformed``: not UTF-8 JSON, not an object, or too big; ``version``: missing or
    other schema version; ``kind``: unknown kind; ``field``: a missing, unexpected,
    wrong-typed or invalid field (the message names it).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def fail(path: str, problem: str) -> NoReturn:
    """Raise the ``field`` ``WireError`` for ``path``."""
    raise WireError("field", f"{path}: {problem}")


def show(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def json_type(value: object) -> str:
    """What JSON calls the type of a decoded value, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


# -- encoding -----------------------------------------------------------------------------


def encode_time(at: datetime, path: str) -> int:
    """``at`` as integer microseconds since the epoch; it must be aware and in 1-9999."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise WireError("field", f"{path}: {at.isoformat()} is a naive datetime")
    delta = at - _EPOCH  # exact, unlike at.timestamp(), a float
    us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if not MIN_US <= us <= MAX_US:
        raise WireError("field", f"{path}: {at.isoformat()} is outside the years 1-9999 UTC")
    return us


def encode_optional_time(at: datetime | None, path: str) -> int | None:
    """``encode_time``, with None for None."""
    return None if at is None else encode_time(at, path)


def address_text(address: IPAddress) -> str:
    """``str(address)``, remembered."""
    text = _ADDRESS_TEXT.get(address)
    if text is None:
        if len(_ADDRESS_TEXT) >= _ADDRESS_CACHE_MAX:
            _ADDRESS_TEXT.clear()
        text = _ADDRESS_TEXT[address] = str(address)
    return text


# -- decoding: JSON shapes ----------------------------------------------------------------


def check_keys(document: dict[str, Any], expected: frozenset[str], where: str) -> None:
    """The object has exactly the ``expected`` keys; else the first missing/extra one."""
    if document.keys() == expected:
        return
    prefix = f"{where}." if where else ""
    missing = sorted(expected - document.keys())
    if missing:
        fail(f"{prefix}{missing[0]}", "missing")
    unexpected = sorted(document.keys() - expected)
    fail(f"{prefix}{unexpected[0]}", "unexpected field")


def json_object(value: object, path: str, keys: frozenset[str]) -> dict[str, Any]:
    """An object with exactly ``keys``."""
    if not isinstance(value, dict):
        fail(path, f"expected an object, got {json_type(value)}")
    check_keys(value, keys, path)
    return value


def json_list(value: object, path: str) -> list[Any]:
    """An array."""
    if not isinstance(value, list):
        fail(path, f"expected an array, got {json_type(value)}")
    return value


def batch_rows(body: object, kind: str) -> list[Any]:
    """A non-empty array (the rows of an observation batch)."""
    rows = json_list(body, kind)
    if not rows:
        fail(kind, "empty batch")
    return rows


def row(value: object, path: str, size: int) -> list[Any]:
    """An array of exactly ``size`` fields (one positional result)."""
    fields = json_list(value, path)
    if len(fields) != size:
        fail(path, f"expected {size} fields, got {len(fields)}")
    return fields


# -- decoding: values ---------------------------------------------------------------------


def string(value: object, path: str) -> str:
    """A string that is valid Unicode (no lone surrogates)."""
    if not isinstance(value, str):
        fail(path, f"expected a string, got {json_type(value)}")
    if not value.isascii():
        # JSON escapes can produce lone surrogates, which no database or log accepts.
        try:
            value.encode()
        except UnicodeEncodeError:
            fail(path, f"{show(value)} is not valid Unicode")
    return value


def key(value: object, path: str) -> str:
    """A non-empty identifier (NTU id, case reference, status name)."""
    checked = string(value, path)
    if not checked:
        fail(path, "empty")
    return checked


def integer(value: object, path: str, low: int, high: int) -> int:
    """An integer (not a bool, not a float) in ``low..high``."""
    if type(value) is not int:  # bool is an int to isinstance
        fail(path, f"expected an integer, got {show(value)}")
    if not low <= value <= high:
        fail(path, f"{value} is outside {low}..{high}")
    return value


def count(value: object, path: str) -> int:
    """A non-negative integer up to 2**63-1."""
    return integer(value, path, 0, I63)


def snmp_int(value: object, path: str) -> int:
    """An integer as an agent can send it (Integer32 up to Counter64)."""
    return integer(value, path, _SNMP_MIN, _SNMP_MAX)


def boolean(value: object, path: str) -> bool:
    """true or false."""
    if not isinstance(value, bool):
        fail(path, f"expected true or false, got {show(value)}")
    return value


def rtt(value: object, path: str) -> float:
    """A finite, non-negative float (JSON written with a fraction or exponent)."""
    if type(value) is not float:
        fail(path, f"expected a number with a fraction, got {show(value)}")
    if not 0.0 <= value < math.inf:  # also false for NaN
        fail(path, f"{value!r} is not a round-trip time")
    return value


def timestamp(value: object, path: str) -> datetime:
    """Integer microseconds since the epoch, in the years 1-9999, as aware UTC."""
    if type(value) is not int:
        fail(path, f"expected integer microseconds since the epoch, got {show(value)}")
    if not MIN_US <= value <= MAX_US:
        fail(path, f"{value} is outside the years 1-9999")
    return _EPOCH + timedelta(microseconds=value)


def address(value: object, path: str) -> IPAddress:
    """An IPv4 or IPv6 address in its string form."""
    if not isinstance(value, str):
        fail(path, f"expected a string, got {json_type(value)}")
    parsed = _ADDRESS_VALUE.get(value)
    if parsed is None:
        try:
            parsed = ipaddress.ip_address(value)
        except ValueError:
            fail(path, f"{show(value)} is not an IP address")
        if len(_ADDRESS_VALUE) >= _ADDRESS_CACHE_MAX:
            _ADDRESS_VALUE.clear()
        _ADDRESS_VALUE[value] = parsed
    return parsed


def optional(value: object, path: str, check: Callable[[object, str], T]) -> T | None:
    """None for null, else ``check(value, path)``."""
    return None if value is None else check(value, path)


def optional_of(check: Callable[[object, str], T]) -> Callable[[object, str], T | None]:
    """``check`` that also accepts null (as None)."""

    def checked(value: object, path: str) -> T | None:
        return None if value is None else check(value, path)

    return checked
