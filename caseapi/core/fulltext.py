"""Full-text search schema shared by the migrations, the schema check and the search.

Two backends, one tokenisation (``caseapi.cases.search``): runs of letters and
digits, case-folded, no stemming, accents kept. Migration 0013 creates both.

- PostgreSQL: a stored generated column ``search_vector`` (``tsvector``) on
  ``cases`` (reference, summary, description) and on ``comments`` (body), each with
  a GIN index. Stored, not an expression index: PostgreSQL rechecks phrase matches
  (``<->``) and reads common words by scanning, and recomputing ``to_tsvector`` for
  each row then cost seconds at 100,000 cases. The ``simple`` configuration, not
  ``english``: no stemming and no stop words, as SQLite's ``unicode61`` tokenizer,
  and case references, NTU and service ids and non-English text are indexed as
  written; prefix matching of the last word covers what stemming would.
  Non-alphanumerics are replaced by spaces first, so PostgreSQL's parser sees the
  tokens FTS5 sees (it would index ``CS-2026-000042`` as ``cs-2026-000042``, ``cs``,
  ``-2026`` ...).
- SQLite: FTS5 external-content tables (``FTS5_TABLES``) that triggers keep in step
  with ``cases`` and ``comments``.

Neither can be declared in ``Base.metadata``, whose tables serve both backends: a
``tsvector`` column and its expression exist only on PostgreSQL (SQLAlchemy would
select the column on SQLite too), and an FTS5 table is virtual. So the models do
not map them, the search names them in SQL, and ``include_in_schema_comparison``
leaves exactly these names out when the schema is compared with the models.
"""

from __future__ import annotations

from typing import Any, Final

#: The text search configuration (see the module docstring for why ``simple``).
PG_CONFIG: Final = "simple"
#: PostgreSQL's generated ``tsvector`` column, on each of ``PG_SEARCHED``.
PG_VECTOR: Final = "search_vector"
#: Table -> its GIN index on ``PG_VECTOR``.
PG_SEARCHED: Final = {"cases": "ix_cases_search", "comments": "ix_comments_search"}

#: SQLite FTS5 tables, with the table each indexes.
FTS5_TABLES: Final = {"cases_fts": "cases", "comments_fts": "comments"}
#: The shadow tables FTS5 creates beside each (``<name>_data`` and so on).
_FTS5_SHADOWS: Final = ("_data", "_idx", "_docsize", "_config", "_content")


def include_in_schema_comparison(name: str | None, type_: str, parent_names: Any) -> bool:
    """An Alembic ``include_name`` that leaves out the search schema (see above).

    Only these names: the FTS5 tables and their shadows, ``search_vector`` on the
    searched tables and its GIN indexes. Their behaviour is tested by the search tests.
    """
    if name is None:
        return True
    if type_ == "table":
        return not any(
            name == table or name in {table + shadow for shadow in _FTS5_SHADOWS}
            for table in FTS5_TABLES
        )
    table = parent_names.get("table_name") if isinstance(parent_names, dict) else None
    if type_ == "column":
        return not (name == PG_VECTOR and table in PG_SEARCHED)
    if type_ == "index":
        return PG_SEARCHED.get(str(table)) != name
    return True
