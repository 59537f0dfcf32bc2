"""Declarative base shared by every table, and the UTC timestamp column type.

SQLite stores no time zone, so ``UTCDateTime`` normalises on the way in (must be
aware; converted to UTC) and re-attaches UTC on the way out. PostgreSQL gets a real
``timestamptz``.

Reading is the hot half (a page of 50 cases holds 800 timestamps): on PostgreSQL
asyncpg decodes ``timestamptz`` as an aware UTC ``datetime`` already, so values pass
untouched; on SQLite one function parses the text and attaches UTC, instead of
SQLAlchemy's parser plus ``TypeDecorator``'s wrapper around ``process_result_value``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, MetaData
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

#: Width of every column that stores who did something (``Principal.actor``:
#: ``role:name``, with key names up to 200 characters) or who a case is assigned to.
ACTOR_LENGTH = 255

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return _as_utc(value)

    def result_processor(
        self, dialect: Dialect, coltype: Any
    ) -> Callable[[Any], datetime | None] | None:
        """What ``process_result_value`` does, in one call per value (or none)."""
        if dialect.name == "postgresql" and dialect.driver == "asyncpg":
            return None  # aware UTC datetimes as they come (asyncpg's timestamptz codec)
        parse = self.impl_instance.dialect_impl(dialect).result_processor(dialect, coltype)
        if parse is None:
            return lambda value: None if value is None else _as_utc(value)

        def process(value: Any) -> datetime | None:
            if value is None:
                return None
            parsed = parse(value)
            assert isinstance(parsed, datetime)
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)

        return process


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
