"""INSERT ... ON CONFLICT DO UPDATE on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.schema import ScalarElementColumnDefault


async def upsert(
    session: AsyncSession, table: Any, rows: Sequence[dict[str, Any]], keys: Sequence[str]
) -> None:
    """Insert ``rows`` of one shape (the same keys), updating those whose ``keys`` exist.

    One statement executed with many parameter sets: SQLAlchemy compiles it once (and
    caches it), where a multi-row VALUES list would be compiled anew for every batch;
    on a large fleet that compilation was most of the cost per cycle.
    """
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(table)
    update = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
    await session.execute(
        stmt.on_conflict_do_update(index_elements=list(keys), set_=update), list(rows)
    )


class RowUpsert:
    """``upsert`` of rows given as tuples in ``columns`` order, through the driver.

    For writes that run for every row of every detector batch (the NTUs' states and
    public statuses: ~3,000 rows a second on a fleet of 100,000): the statement is
    compiled once per dialect, and each row's values are converted by the columns' own
    bind processors (so what is stored is what ``upsert`` stores) straight into the
    driver's positional parameters, with no per-row dict, no ``construct_params`` and
    no processor for a ``None`` or a column without one. One executemany, in the
    caller's transaction.
    """

    def __init__(self, table: Table, columns: Sequence[str], keys: Sequence[str]) -> None:
        self._table = table
        self.columns = tuple(columns)
        self._keys = tuple(keys)
        self._plans: WeakKeyDictionary[Dialect, _Plan] = WeakKeyDictionary()

    def _plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect)
        if plan is None:
            insert = pg_insert if dialect.name == "postgresql" else sqlite_insert
            stmt = insert(self._table)
            update = {c: stmt.excluded[c] for c in self.columns if c not in self._keys}
            stmt = stmt.on_conflict_do_update(index_elements=list(self._keys), set_=update)
            compiled = stmt.compile(dialect=dialect, column_keys=list(self.columns))
            order = compiled.positiontup
            if order is None or not set(self.columns) <= set(order):
                raise NotImplementedError(f"{dialect.name}: no positional parameters")
            # The other parameters are the columns' scalar defaults (for an insert).
            template: list[Any] = []
            positions: list[tuple[int, int]] = []
            converters: list[tuple[int, Callable[[Any], Any]]] = []
            for index, name in enumerate(order):
                column_type = self._table.c[name].type.dialect_impl(dialect)
                convert = column_type.bind_processor(dialect)
                if name in self.columns:
                    template.append(None)
                    positions.append((index, self.columns.index(name)))
                    if convert is not None:
                        converters.append((index, convert))
                    continue
                default = self._table.c[name].default
                if not isinstance(default, ScalarElementColumnDefault):
                    raise NotImplementedError(f"{name}: not given and no scalar default")
                value = default.arg
                template.append(convert(value) if convert and value is not None else value)
            plan = _Plan(
                sql=str(compiled), template=template, positions=positions, converters=converters
            )
            self._plans[dialect] = plan
        return plan

    async def execute(self, session: AsyncSession, rows: Sequence[Sequence[Any]]) -> None:
        """Insert ``rows`` (each in ``columns`` order), updating those whose keys exist."""
        if not rows:
            return
        connection = await session.connection()
        plan = self._plan(connection.dialect)
        template, positions, converters = plan.template, plan.positions, plan.converters
        params: list[tuple[Any, ...]] = []
        for row in rows:
            values = template.copy()
            for index, column in positions:
                values[index] = row[column]
            for index, convert in converters:
                value = values[index]
                if value is not None:
                    values[index] = convert(value)
            params.append(tuple(values))
        await connection.exec_driver_sql(plan.sql, params)


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    template: list[Any]
    """A row of driver parameters: the defaults of the columns not given, else None."""
    positions: list[tuple[int, int]]
    """(parameter index, index of its value in a row) of the columns given."""
    converters: list[tuple[int, Callable[[Any], Any]]]
    """(parameter index, bind processor) of the columns given that have one."""
