"""RFO: the reason preventive actions do not apply, when the engineer says so.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 20:00:00+00:00

Hand-written to match ``RfoVersion.preventive_not_applicable``; the test suite
compares the result with ``Base.metadata`` on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (no batch copy): the published-row triggers stay in place.
    op.add_column("rfo_versions", sa.Column("preventive_not_applicable", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rfo_versions") as batch:
        batch.drop_column("preventive_not_applicable")
