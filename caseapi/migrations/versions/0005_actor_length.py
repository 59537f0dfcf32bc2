"""Widen the columns that store actors (``role:name``) and assignees to 255 characters.

An API key's name may be 200 characters, so ``Principal.actor`` (``engineer:`` +
name) did not fit the old ``VARCHAR(64)`` columns: an admin-created key with a long
name failed on insert, and so did anything that key then did.

PostgreSQL widens a ``varchar`` in place (no table rewrite). SQLite does not enforce
lengths and has no ``ALTER COLUMN``; rebuilding the tables (Alembic's batch mode)
would drop ``cases`` while ``case_events`` and the rest reference it (``ON DELETE
CASCADE`` with foreign keys on) and would drop the immutability triggers of
``comments``. So on SQLite only the declared types in the stored ``CREATE TABLE``
text change, the documented ``writable_schema`` procedure for changes that do not
affect the on-disk format (same TEXT affinity, same rows), followed by a
``schema_version`` bump so every connection reloads the schema.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 05:00:00+00:00
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_LENGTH = 255

#: (table, column, old length, nullable)
COLUMNS: Sequence[tuple[str, str, int, bool]] = (
    ("api_keys", "created_by", 64, False),
    ("cases", "created_by", 64, True),
    ("cases", "assignee", 64, True),
    ("case_events", "actor", 64, False),
    ("case_commitments", "set_by", 64, False),
    ("case_idempotency_keys", "scope", 100, False),
    ("comments", "author", 64, False),
    ("rfo_versions", "created_by", 64, False),
    ("rfo_versions", "updated_by", 64, False),
    ("rfo_versions", "published_by", 64, True),
)


def upgrade() -> None:
    _resize(to_old=False)


def downgrade() -> None:
    _resize(to_old=True)


def _resize(*, to_old: bool) -> None:
    if op.get_bind().dialect.name == "sqlite":
        _resize_sqlite(to_old=to_old)
        return
    for table, column, old, nullable in COLUMNS:
        before, after = (NEW_LENGTH, old) if to_old else (old, NEW_LENGTH)
        op.alter_column(
            table,
            column,
            type_=sa.String(after),
            existing_type=sa.String(before),
            existing_nullable=nullable,
        )


def _resize_sqlite(*, to_old: bool) -> None:
    bind = op.get_bind()
    tables: dict[str, str] = {}
    for table, column, old, _nullable in COLUMNS:
        before, after = (NEW_LENGTH, old) if to_old else (old, NEW_LENGTH)
        if table not in tables:
            sql = bind.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).scalar_one()
            tables[table] = str(sql)
        pattern = re.compile(rf"(\b{column}\s+)VARCHAR\({before}\)", re.IGNORECASE)
        tables[table], count = pattern.subn(rf"\g<1>VARCHAR({after})", tables[table])
        if count != 1:
            raise RuntimeError(f"{table}.{column}: expected one VARCHAR({before}), found {count}")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    try:
        for table, sql in tables.items():
            bind.exec_driver_sql(
                "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?",
                (sql, table),
            )
        bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    finally:
        bind.exec_driver_sql("PRAGMA writable_schema = OFF")
    problems = bind.exec_driver_sql("PRAGMA quick_check").scalars().all()
    if problems != ["ok"]:
        raise RuntimeError(f"SQLite schema check failed after resizing columns: {problems}")
