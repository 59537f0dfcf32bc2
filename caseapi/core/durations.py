"""Durations written as text: ``500ms``, ``30s``, ``10m``, ``24h``, ``3d``, ``1h30m``.

Settings, inventory attributes (a contract's ``first_response``) and the CLI all
take durations in this one form; ``Duration`` is the pydantic field type for it.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Final

from pydantic import BeforeValidator

_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_MAX_DURATION_SECONDS: Final = 3650 * 86400  # ten years: beyond that a value is a typo
_PART: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: object) -> timedelta:
    """Parse ``500ms``, ``30s``, ``10m``, ``24h``, ``3d`` or a sum like ``1h30m``.

    Raises:
        ValueError: Not a duration (a bare number has no unit), or longer than 3650d.
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected a duration such as '30s', got {value!r}")
    if isinstance(value, int | float):
        raise ValueError(f"{value!r} has no unit: write e.g. '{value}s' or '{value}m'")
    text = value.strip().replace(" ", "")
    if not text:
        raise ValueError("empty duration")
    pos = 0
    seconds = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(
            f"{value!r} is not a duration: use a number and a unit (ms, s, m, h, d), e.g. '30s'"
        )
    if seconds > _MAX_DURATION_SECONDS:
        raise ValueError(f"{value!r} is too long: at most 3650d")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The shortest readable form: ``10m``, ``1h30m``, ``500ms``."""
    ms = round(delta.total_seconds() * 1000)
    if ms % 1000:
        return f"{ms}ms"
    seconds = ms // 1000
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def positive(delta: timedelta) -> timedelta:
    """Return ``delta`` if it is greater than zero.

    Raises:
        ValueError: ``must be greater than zero``.
    """
    if delta <= timedelta(0):
        raise ValueError("must be greater than zero")
    return delta


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
