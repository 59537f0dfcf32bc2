"""Maintenance notices: when the started notice and the reminder went out.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 09:00:00+00:00

Hand-written to match ``MaintenanceWindow.started_notified_at`` / ``reminded_at``;
the test suite compares the result with ``Base.metadata`` on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("maintenance_windows") as batch:
        batch.add_column(
            sa.Column("started_notified_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("maintenance_windows") as batch:
        batch.drop_column("reminded_at")
        batch.drop_column("started_notified_at")
