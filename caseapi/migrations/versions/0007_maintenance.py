"""Maintenance windows and their reference counter.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 07:00:00+00:00

Hand-written to match ``caseapi.maintenance.models``; the test suite compares the
result with ``Base.metadata`` on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTOR_LENGTH = 255


def upgrade() -> None:
    op.create_table(
        "maintenance_windows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(32), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("behaviour", sa.String(16), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scope_ntus", sa.JSON(), nullable=False),
        sa.Column("scope_nodes", sa.JSON(), nullable=False),
        sa.Column("scope_customers", sa.JSON(), nullable=False),
        sa.Column("scope_services", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(ACTOR_LENGTH), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(ACTOR_LENGTH), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_by", sa.String(ACTOR_LENGTH), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_by", sa.String(ACTOR_LENGTH), nullable=True),
        sa.Column("actual_impact", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_windows")),
        sa.UniqueConstraint("ref", name=op.f("uq_maintenance_windows_ref")),
    )
    op.create_index(op.f("ix_maintenance_windows_starts_at"), "maintenance_windows", ["starts_at"])
    op.create_index(op.f("ix_maintenance_windows_ends_at"), "maintenance_windows", ["ends_at"])
    op.create_table(
        "maintenance_ref_counters",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_maintenance_ref_counters")),
    )


def downgrade() -> None:
    op.drop_table("maintenance_ref_counters")
    op.drop_index(op.f("ix_maintenance_windows_ends_at"), table_name="maintenance_windows")
    op.drop_index(op.f("ix_maintenance_windows_starts_at"), table_name="maintenance_windows")
    op.drop_table("maintenance_windows")
