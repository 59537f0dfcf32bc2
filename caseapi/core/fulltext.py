"""Full-text search plumbing shared by the models, the migrations and the search.

Two backends, one tokenisation (``caseapi.cases.search``): runs of letters and
digits, case-folded, no stemming, accents kept.

- PostgreSQL: a GIN index on an expression ``to_tsvector('simple', ...)`` of the
  searched columns (``pg_document``), declared on the models for PostgreSQL only
  (``postgresql_only``). The ``simple`` configuration, not ``english``: no stemming
  and no stop words, as SQLite's ``unicode61`` tokenizer, and case references,
  NTU and service ids and non-English text are indexed as written; prefix matching
  of the last word covers what stemming would. Non-alphanumerics are replaced by
  spaces first, so PostgreSQL's parser sees the same tokens FTS5 does (it would
  otherwise index ``CS-2026-000042`` as ``cs-2026-000042``, ``cs``, ``-2026`` ...).
- SQLite: FTS5 external-content tables (``FTS5_TABLES``) that triggers keep in step
  with ``cases`` and ``comments`` (migration 0013). A virtual table and its shadow
  tables cannot be declared in ``Base.metadata``, so ``include_in_schema_comparison``
  leaves them out when the schema is compared with the models.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import ColumnElement, ColumnExpressionArgument, Index, func, text

#: The text search configuration (see the module docstring for why ``simple``).
PG_CONFIG: Final = "simple"
#: What separates tokens on PostgreSQL: anything but a letter or digit.
_PG_SEPARATORS: Final = "[^[:alnum:]]+"

#: SQLite FTS5 tables, with what each indexes (migration 0013 creates them).
FTS5_TABLES: Final = {"cases_fts": "cases", "comments_fts": "comments"}
#: The shadow tables FTS5 creates beside each (``<name>_data`` and so on).
_FTS5_SHADOWS: Final = ("_data", "_idx", "_docsize", "_config", "_content")


def pg_document(*columns: ColumnExpressionArgument[Any]) -> ColumnElement[Any]:
    """The ``tsvector`` of ``columns`` (NULLs as empty), as indexed and as searched.

    Every constant is a literal, not a bound parameter: PostgreSQL uses an expression
    index only for a query expression that is the same, constants included.
    """
    joined: ColumnElement[Any] | None = None
    for column in columns:
        part = func.coalesce(column, text("''"))
        joined = part if joined is None else joined.op("||")(text("' '")).op("||")(part)
    assert joined is not None
    plain = func.regexp_replace(joined, text(f"'{_PG_SEPARATORS}'"), text("' '"), text("'g'"))
    return func.to_tsvector(text(f"'{PG_CONFIG}'"), plain)


def postgresql_only(index: Index) -> Index:
    """Create ``index`` on PostgreSQL only (Alembic's comparison skips expression
    indexes on SQLite, with a warning the schema test expects)."""
    return index.ddl_if(dialect="postgresql")


def include_in_schema_comparison(name: str | None, type_: str, parent_names: Any) -> bool:
    """An Alembic ``include_name`` that leaves out the FTS5 tables and their shadows.

    They are virtual tables, which ``Base.metadata`` cannot declare; their triggers
    and contents are tested by the search tests instead.
    """
    if type_ != "table" or name is None:
        return True
    return not any(
        name == table or name in {table + shadow for shadow in _FTS5_SHADOWS}
        for table in FTS5_TABLES
    )
