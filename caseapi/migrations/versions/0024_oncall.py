"""On-call and escalation: ``oncall_rotations``, ``oncall_overrides``,
``escalation_tiers`` and ``staff_alerts``.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 11:00:00+00:00

Hand-written to match ``caseapi.oncall.models``; the test suite compares the result
with ``Base.metadata`` on SQLite and PostgreSQL. ``staff_alerts.event_key`` is UNIQUE:
an event alerts once, whatever retries or restarts happen.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oncall_rotations",
        sa.Column("team_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("handoff", sa.String(16), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("order", sa.JSON(), nullable=False),
        sa.Column("ack_within_seconds", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", name=op.f("pk_oncall_rotations")),
    )
    op.create_table(
        "oncall_overrides",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(64), nullable=False),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("starts_local", sa.String(19), nullable=False),
        sa.Column("ends_local", sa.String(19), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["oncall_rotations.team_id"],
            name=op.f("fk_oncall_overrides_team_id_oncall_rotations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_overrides")),
    )
    op.create_index(op.f("ix_oncall_overrides_team_id"), "oncall_overrides", ["team_id"])
    op.create_table(
        "escalation_tiers",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("levels", sa.JSON(), nullable=False),
        sa.Column("notify_after", sa.JSON(), nullable=False),
        sa.Column("customer_sees", sa.String(24), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_escalation_tiers")),
    )
    op.create_table(
        "staff_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_key", sa.String(200), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("ack_within_seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acked_by", sa.String(255), nullable=True),
        sa.Column("ack_token_hash", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_staff_alerts_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_alerts")),
        sa.UniqueConstraint("event_key", name=op.f("uq_staff_alerts_event_key")),
    )
    op.create_index(op.f("ix_staff_alerts_case_id"), "staff_alerts", ["case_id"])
    op.create_index(op.f("ix_staff_alerts_next_at"), "staff_alerts", ["next_at"])


def downgrade() -> None:
    op.drop_table("staff_alerts")
    op.drop_table("escalation_tiers")
    op.drop_table("oncall_overrides")
    op.drop_table("oncall_rotations")
