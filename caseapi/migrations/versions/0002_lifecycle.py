"""Case lifecycle: SLA deadlines, escalation, commitments, waiting clocks, idempotency.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 00:00:00+00:00

Hand-written to match ``caseapi.cases.models``. New ``cases`` columns are nullable or
carry a server default, so existing rows stay valid; ``next_due_at`` stays NULL for
them until the case next changes (they predate SLA clocks).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIMESTAMPS = (
    "requested_date",
    "first_response_due_at",
    "first_responded_at",
    "first_response_breached_at",
    "unassigned_due_at",
    "unassigned_flagged_at",
    "ttr_due_at",
    "ttr_breached_at",
    "paused_at",
    "waiting_since",
    "reminder_due_at",
    "reminder_sent_at",
    "auto_close_due_at",
    "auto_close_held_at",
    "rfo_published_at",
    "closed_at",
    "next_due_at",
)


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(
            sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False)
        )
        batch.add_column(sa.Column("subject", sa.String(32), nullable=True))
        batch.add_column(sa.Column("suggested_priority", sa.String(32), nullable=True))
        batch.add_column(sa.Column("description", sa.Text(), nullable=True))
        batch.add_column(sa.Column("created_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("assignee", sa.String(64), nullable=True))
        batch.add_column(
            sa.Column(
                "escalation_level", sa.String(32), server_default=sa.text("'L1'"), nullable=False
            )
        )
        for name in _TIMESTAMPS:
            batch.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("resolution_method", sa.String(64), nullable=True))
        batch.add_column(sa.Column("root_cause_category", sa.String(32), nullable=True))
        batch.add_column(sa.Column("resolution", sa.Text(), nullable=True))
        batch.create_index(batch.f("ix_cases_assignee"), ["assignee"])
        batch.create_index(batch.f("ix_cases_next_due_at"), ["next_due_at"])

    op.create_table(
        "case_commitments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("set_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("met_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("missed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_commitments")),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_commitments_case_id_cases"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(op.f("ix_case_commitments_case_id"), "case_commitments", ["case_id"])
    op.create_table(
        "case_notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_notifications")),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_notifications_case_id_cases"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(op.f("ix_case_notifications_case_id"), "case_notifications", ["case_id"])
    op.create_table(
        "case_idempotency_keys",
        sa.Column("scope", sa.String(100), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_case_idempotency_keys")),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_idempotency_keys_case_id_cases"),
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("case_idempotency_keys")
    op.drop_table("case_notifications")
    op.drop_table("case_commitments")
    with op.batch_alter_table("cases") as batch:
        batch.drop_index(batch.f("ix_cases_next_due_at"))
        batch.drop_index(batch.f("ix_cases_assignee"))
        for name in (
            "resolution",
            "root_cause_category",
            "resolution_method",
            *reversed(_TIMESTAMPS),
            "escalation_level",
            "assignee",
            "created_by",
            "description",
            "suggested_priority",
            "subject",
            "version",
        ):
            batch.drop_column(name)
