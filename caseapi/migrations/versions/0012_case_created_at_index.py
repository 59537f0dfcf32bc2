"""Cases: an index on ``created_at`` for the ``created_since`` / ``created_before`` filters.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-12 09:00:00+00:00

Every listing also counts its matches (``count``); without the index a time-only
filter counts by reading the whole table (about 100 ms per request at a million
cases on PostgreSQL, 5 ms with it), as ``updated_since`` would without
``ix_cases_updated_at``. Hand-written to match ``Case.created_at``; the test suite
compares the result with ``Base.metadata`` on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain CREATE INDEX, not a batch copy: rebuilding ``cases`` on SQLite would drop
    # it while ``case_events`` and the rest reference it (``ON DELETE CASCADE``).
    op.create_index(op.f("ix_cases_created_at"), "cases", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_cases_created_at"), table_name="cases")
