"""Cases: full-text search over reference, summary, description and comments (``q``).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 10:00:00+00:00

PostgreSQL: a stored generated ``tsvector`` column ``search_vector`` on ``cases``
and ``comments`` (``to_tsvector('simple', ...)``), each with a GIN index; adding the
column computes it for the existing rows. Not models: ``caseapi.core.fulltext``
says why, and the schema comparison leaves these names out.

SQLite: FTS5 external-content tables ``cases_fts`` and ``comments_fts`` (their text
stays in ``cases`` / ``comments``; FTS5 keeps only the index), kept in step by
triggers, and filled from the existing rows by FTS5's ``rebuild``. The ``unicode61``
tokenizer with ``remove_diacritics 0`` tokenises as the PostgreSQL expression does.
A later migration that rebuilds ``cases`` or ``comments`` on SQLite (a batch copy)
drops these triggers with the old table and must create them again.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _pg_vector(columns: str) -> str:
    # caseapi.core.fulltext: the 'simple' configuration, non-alphanumerics as spaces.
    return (
        "tsvector GENERATED ALWAYS AS (to_tsvector('simple', regexp_replace("
        f"{columns}, '[^[:alnum:]]+', ' ', 'g'))) STORED"
    )


_PG_UPGRADE = [
    # Adding a stored generated column rewrites the table: that is the backfill.
    "ALTER TABLE cases ADD COLUMN search_vector "
    + _pg_vector(
        "coalesce(ref, '') || ' ' || coalesce(summary, '') || ' ' || coalesce(description, '')"
    ),
    "CREATE INDEX ix_cases_search ON cases USING gin (search_vector)",
    "ALTER TABLE comments ADD COLUMN search_vector " + _pg_vector("coalesce(body, '')"),
    "CREATE INDEX ix_comments_search ON comments USING gin (search_vector)",
]

_TOKENIZE = "tokenize = 'unicode61 remove_diacritics 0'"

_SQLITE_UPGRADE = [
    "CREATE VIRTUAL TABLE cases_fts USING fts5("
    f"ref, summary, description, content = 'cases', content_rowid = 'id', {_TOKENIZE})",
    """CREATE TRIGGER cases_fts_insert AFTER INSERT ON cases BEGIN
        INSERT INTO cases_fts (rowid, ref, summary, description)
        VALUES (new.id, new.ref, new.summary, new.description);
    END""",
    # Only when a searched column changes: the lifecycle updates cases all the time.
    """CREATE TRIGGER cases_fts_update AFTER UPDATE OF ref, summary, description ON cases
    BEGIN
        INSERT INTO cases_fts (cases_fts, rowid, ref, summary, description)
        VALUES ('delete', old.id, old.ref, old.summary, old.description);
        INSERT INTO cases_fts (rowid, ref, summary, description)
        VALUES (new.id, new.ref, new.summary, new.description);
    END""",
    """CREATE TRIGGER cases_fts_delete AFTER DELETE ON cases BEGIN
        INSERT INTO cases_fts (cases_fts, rowid, ref, summary, description)
        VALUES ('delete', old.id, old.ref, old.summary, old.description);
    END""",
    "CREATE VIRTUAL TABLE comments_fts USING fts5("
    f"body, content = 'comments', content_rowid = 'id', {_TOKENIZE})",
    # Comments are immutable (0003's triggers refuse UPDATE), so no update trigger.
    """CREATE TRIGGER comments_fts_insert AFTER INSERT ON comments BEGIN
        INSERT INTO comments_fts (rowid, body) VALUES (new.id, new.body);
    END""",
    """CREATE TRIGGER comments_fts_delete AFTER DELETE ON comments BEGIN
        INSERT INTO comments_fts (comments_fts, rowid, body) VALUES ('delete', old.id, old.body);
    END""",
    "INSERT INTO cases_fts (cases_fts) VALUES ('rebuild')",
    "INSERT INTO comments_fts (comments_fts) VALUES ('rebuild')",
]


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in _PG_UPGRADE if postgresql else _SQLITE_UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Dropping a column drops its indexes.
        op.execute("ALTER TABLE comments DROP COLUMN search_vector")
        op.execute("ALTER TABLE cases DROP COLUMN search_vector")
        return
    for trigger in (
        "comments_fts_delete",
        "comments_fts_insert",
        "cases_fts_delete",
        "cases_fts_update",
        "cases_fts_insert",
    ):
        op.execute(f"DROP TRIGGER {trigger}")
    op.execute("DROP TABLE comments_fts")
    op.execute("DROP TABLE cases_fts")
