"""People: ``customer_contacts.timezone`` and ``canned_replies``.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 11:00:00+00:00

Hand-written to match ``caseapi.customers.models`` and ``caseapi.replies.models``;
the test suite compares the result with ``Base.metadata`` on SQLite and PostgreSQL.
The shipped example replies are installed by the reply service on first use (by
``shipped_key``), not here: a database restored or truncated gets them back.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customer_contacts") as batch:
        batch.add_column(sa.Column("timezone", sa.String(64), nullable=True))
    op.create_table(
        "canned_replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("visibility", sa.String(16), nullable=False),
        sa.Column("shipped_key", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canned_replies")),
        sa.UniqueConstraint("shipped_key", name=op.f("uq_canned_replies_shipped_key")),
    )


def downgrade() -> None:
    op.drop_table("canned_replies")
    with op.batch_alter_table("customer_contacts") as batch:
        batch.drop_column("timezone")
