"""Cases: the estimated time of restoration (ETR) support gives the customer.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 09:00:00+00:00

Hand-written to match ``Case.etr``; the test suite compares the result with
``Base.metadata`` on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN, not a batch copy: rebuilding ``cases`` on SQLite would drop
    # it while ``case_events`` and the rest reference it (``ON DELETE CASCADE``).
    op.add_column("cases", sa.Column("etr", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # ``ALTER TABLE ... DROP COLUMN`` (SQLite 3.35+) for the same reason.
    op.drop_column("cases", "etr")
