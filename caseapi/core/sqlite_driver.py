"""SQLAlchemy's aiosqlite adaptation with one thread hop per statement, not four.

aiosqlite runs every call on a connection's own thread: the event loop puts the call
on a queue, the thread runs it and hands the result back through
``call_soon_threadsafe``. SQLAlchemy's adaptation makes four such calls for every
statement (open a cursor, execute, fetch the rows, close the cursor), and each hop
costs the event loop tens of microseconds of CPU (a queue, a thread wake-up, a
self-pipe write and an epoll round), far more than SQLite's own work for a read by
key: measured on ``GET /v1/cases/{ref}``, 30 hops made most of the request's CPU.

``OneHopDbapi`` keeps everything SQLAlchemy's ``sqlite+aiosqlite`` dialect does and
replaces only its cursor: execute, fetch every row, read ``description``,
``rowcount`` and ``lastrowid`` and close the cursor happen in one function on the
connection's thread. Results were fetched whole before (the adaptation buffers them in
a deque); server-side cursors (``stream_results``) keep SQLAlchemy's own class.

It relies on aiosqlite's ``Connection._execute`` (queue a function on the thread)
and ``_conn`` (the ``sqlite3.Connection``); ``supported`` says whether this aiosqlite
has them, and ``caseapi.core.database`` falls back to the plain adaptation if not.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Sequence
from typing import Any, Final

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

#: What one statement leaves behind: description, rows, rowcount, lastrowid and
#: whether the connection is in a transaction afterwards.
_Outcome = tuple[Any, list[Any], int, int | None, bool]

#: The BEGIN put off until the next statement (``caseapi.core.database`` emits it).
_DEFERRABLE_BEGIN: Final = frozenset({"BEGIN", "BEGIN DEFERRED"})


def supported() -> bool:
    """Whether the installed aiosqlite has the internals the one-hop cursor uses."""
    connection: Final = aiosqlite.Connection
    return callable(getattr(connection, "_execute", None)) and isinstance(
        getattr(connection, "_conn", None), property
    )


def _run(
    connection: sqlite3.Connection,
    operation: str,
    parameters: Any,
    many: bool,
    begin: str | None,
) -> _Outcome:
    # On the connection's thread: the whole statement (after the BEGIN put off until
    # now, if any), the cursor closed before return.
    cursor = connection.cursor()
    try:
        if begin is not None:
            cursor.execute(begin)
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid, connection.in_transaction
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A client-side cursor whose statement runs in one call on aiosqlite's thread."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No aiosqlite cursor of its own (the base class would open one: a hop).
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    async def _async_soft_close(self) -> None:
        return None  # the cursor was closed on the thread already

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        self._call(operation, parameters, many=False)

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        self._call(operation, seq_of_parameters, many=True)

    def _call(self, operation: Any, parameters: Any, *, many: bool) -> None:
        adapted = self._adapt_connection
        assert isinstance(adapted, OneHopConnection)
        if (
            not many
            and not parameters
            and not adapted.in_transaction
            and isinstance(operation, str)
            and operation.strip().upper() in _DEFERRABLE_BEGIN
        ):
            # A deferred BEGIN takes no lock and cannot fail: it runs with the next
            # statement, in the same hop (and not at all if none comes).
            adapted.pending_begin = operation
            adapted.in_transaction = True
            self._description, self._rows, self._rowcount, self._lastrowid = None, deque(), -1, None
            return
        begin, adapted.pending_begin = adapted.pending_begin, None
        try:
            outcome = await_(self._statement(operation, parameters, many, begin))
        except Exception as error:
            # Whether the statement (or its BEGIN) left a transaction open is unknown.
            adapted.started = True
            self._adapt_connection._handle_exception(error)
        self._description, rows, self._rowcount, self._lastrowid, started = outcome
        adapted.started = adapted.in_transaction = started
        self._rows = deque(rows)

    async def _statement(
        self, operation: Any, parameters: Any, many: bool, begin: str | None
    ) -> _Outcome:
        connection: Any = self._connection
        async with self._adapt_connection._execute_mutex:
            outcome: _Outcome = await connection._execute(
                _run, connection._conn, operation, parameters, many, begin
            )
            return outcome


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's aiosqlite connection with ``OneHopCursor`` as its cursor.

    It knows whether SQLite has a transaction open (``started``: read from
    ``sqlite3.Connection.in_transaction`` on the thread after every statement), so a
    rollback or commit with nothing to end costs no hop: SQLAlchemy's session ends
    a read with a rollback and the pool then resets the connection with another.
    """

    __slots__ = ("in_transaction", "pending_begin", "started")
    _cursor_cls = OneHopCursor  # type: ignore[assignment]  # a subclass of the base's

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        #: A transaction was begun, here or in SQLite (a BEGIN may still be pending).
        self.in_transaction = True
        #: A deferred BEGIN not sent yet (it goes with the next statement).
        self.pending_begin: str | None = None
        #: SQLite has a transaction open (unknown counts as open).
        self.started = True

    def rollback(self) -> None:
        self.pending_begin = None
        if self.started:
            super().rollback()
            self.started = False
        self.in_transaction = False

    def commit(self) -> None:
        self.pending_begin = None
        if self.started:
            super().commit()
            self.started = False
        self.in_transaction = False


class OneHopDbapi(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module to pass as ``module=`` to ``create_async_engine``."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        adapted = super().connect(*arg, **kw)
        return OneHopConnection(self, adapted._connection)
