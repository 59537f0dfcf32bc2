"""Topology: upstream nodes, and cases linked to an upstream incident.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 08:00:00+00:00

Hand-written to match ``caseapi.ntus.models.Node`` and ``Case.parent_case_id`` /
``Case.affected``; the test suite compares the result with ``Base.metadata`` on
SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("parent", sa.String(64), nullable=True),
        sa.Column("site", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nodes")),
    )
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("parent_case_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("affected", sa.JSON(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_cases_parent_case_id_cases"), "cases", ["parent_case_id"], ["id"]
        )
        batch.create_index(op.f("ix_cases_parent_case_id"), ["parent_case_id"])


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_index(op.f("ix_cases_parent_case_id"))
        batch.drop_constraint(op.f("fk_cases_parent_case_id_cases"), type_="foreignkey")
        batch.drop_column("affected")
        batch.drop_column("parent_case_id")
    op.drop_table("nodes")
