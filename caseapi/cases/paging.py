"""Keyset pagination bound to the filters of the listing it pages.

One implementation for every ``GET`` listing with a ``cursor`` (cases, the audit
log, held mail): a cursor holds the last row's id and a fingerprint of the filters,
and following it with other filters is refused rather than silently paging another
listing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Sequence
from dataclasses import asdict, dataclass, fields, is_dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, Generic, Protocol, TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.cases.errors import CursorFiltersChangedError
from caseapi.core.database import decode_cursor, encode_cursor, session_scope

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

MAX_PAGE_SIZE: Final = 500

#: A cursor holds the keyset position and the fingerprint of the filters it pages.
_CURSOR_KEYS: Final = {"id": int, "filters": str}


class _Row(Protocol):
    """A mapped row with an integer primary key, the keyset of every listing."""

    @property
    def id(self) -> int: ...


#: Unbounded: mypy refuses ``Case`` and ``AuditEvent`` against a ``_Row`` bound here
#: (it accepts them against ``_Row`` elsewhere), so ``page`` casts the one row whose
#: id it reads.
RowT = TypeVar("RowT")
FiltersT = TypeVar("FiltersT", bound="DataclassInstance")
FiltersT_contra = TypeVar("FiltersT_contra", bound="DataclassInstance", contravariant=True)


class ListRows(Protocol[FiltersT_contra, RowT]):
    """A repository's listing: up to ``limit`` rows matching ``filters`` below id
    ``before_id`` (all when ``None``), highest id first."""

    def __call__(
        self, session: AsyncSession, *, filters: FiltersT_contra, before_id: int | None, limit: int
    ) -> Awaitable[list[RowT]]: ...


class CountRows(Protocol[FiltersT_contra]):
    """A repository's count: how many rows match ``filters`` in all."""

    def __call__(self, session: AsyncSession, *, filters: FiltersT_contra) -> Awaitable[int]: ...


class ListCountedRows(Protocol[FiltersT_contra, RowT]):
    """``ListRows`` and ``CountRows`` in one statement: the rows and the count of all,
    or ``None`` for the count when no row came back."""

    def __call__(
        self, session: AsyncSession, *, filters: FiltersT_contra, before_id: int | None, limit: int
    ) -> Awaitable[tuple[list[RowT], int | None]]: ...


@dataclass(frozen=True, slots=True)
class Page(Generic[RowT]):
    """One page of a listing."""

    items: list[RowT]
    count: int
    next_cursor: str | None


def filters_fingerprint(filters: DataclassInstance) -> str:
    """A short digest of what ``filters`` match, however a request spelled them.

    Every field counts (a new filter is covered without touching this); a sequence
    is a set (order and repeats do not matter) and a time its UTC instant. It only
    tells listings apart: it is no signature, and needs none, since the filters (the
    customer scope included) come from each request, never from the cursor.
    """
    canonical: dict[str, object] = {}
    for field in fields(filters):
        value = getattr(filters, field.name)
        if isinstance(value, datetime):
            value = value.astimezone(UTC).isoformat()
        elif is_dataclass(value) and not isinstance(value, type):
            value = asdict(value)
        elif isinstance(value, Sequence) and not isinstance(value, str):
            value = sorted({str(item) for item in value})
        canonical[field.name] = value
    digest = hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()
    return digest[:16]


async def page(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    filters: FiltersT,
    cursor: str | None,
    limit: int,
    fetch: ListRows[FiltersT, RowT],
    count: CountRows[FiltersT],
    fetch_counted: ListCountedRows[FiltersT, RowT] | None = None,
) -> Page[RowT]:
    """Return one page of a listing, newest first, in one session of reads.

    Args:
        sessionmaker: Session factory of the case database.
        filters: What the listing matches; the cursor is bound to them.
        cursor: ``next_cursor`` of the previous page, or ``None`` for the first.
        limit: Page size, 1 to ``MAX_PAGE_SIZE`` (may change from page to page).
        fetch: The repository's listing of the rows.
        count: The repository's count of them.
        fetch_counted: ``fetch`` and ``count`` in one statement, if the repository
            has it (one round trip instead of two; ``count`` then runs only for an
            empty page).

    Raises:
        ValueError: ``limit`` is out of range.
        InvalidCursorError: ``cursor`` was not issued by this service.
        CursorFiltersChangedError: ``cursor`` was issued for other ``filters``.
    """
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
    fingerprint = filters_fingerprint(filters)
    before_id = None
    if cursor is not None:
        position = decode_cursor(cursor, keys=_CURSOR_KEYS)
        if position["filters"] != fingerprint:
            raise CursorFiltersChangedError(cursor)
        before_id = position["id"]
    async with session_scope(sessionmaker, reads=True) as session:
        # One extra row tells whether another page exists.
        total: int | None
        if fetch_counted is not None:
            items, total = await fetch_counted(
                session, filters=filters, before_id=before_id, limit=limit + 1
            )
        else:
            items = await fetch(session, filters=filters, before_id=before_id, limit=limit + 1)
            total = None
        if total is None:
            total = await count(session, filters=filters)
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        last = cast(_Row, items[-1])
        next_cursor = encode_cursor({"id": last.id, "filters": fingerprint})
    return Page(items=items, count=total, next_cursor=next_cursor)
