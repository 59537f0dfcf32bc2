"""Initial schema: customers, NTUs, detector state, cases and their timeline.

Revision ID: 0001
Revises:
Create Date: 2026-01-01 00:00:00+00:00

Hand-written to match ``caseapi.ntus.models`` and ``caseapi.cases.models``; the test
suite checks that the result equals ``Base.metadata`` on SQLite and PostgreSQL.
Enum columns are plain VARCHAR(32) with no CHECK constraint, so new enum members need
no migration.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of the predicate in caseapi.cases.models: a migration must not change
# when the model code does.
_OPEN_CASE_PREDICATE = "status NOT IN ('cancelled', 'closed', 'merged')"


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("contract_status", sa.String(16), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
    )
    op.create_table(
        "ntus",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("service_id", sa.String(64), nullable=True),
        sa.Column("site", sa.String(200), nullable=True),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("parent", sa.String(64), nullable=True),
        sa.Column("probe", sa.JSON(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ntus")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_ntus_customer_id_customers")
        ),
        sa.UniqueConstraint("address", name=op.f("uq_ntus_address")),
    )
    op.create_index(op.f("ix_ntus_customer_id"), "ntus", ["customer_id"])
    op.create_table(
        "ntu_states",
        sa.Column("ntu_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outage_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_good_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("good_streak", sa.Integer(), nullable=False),
        sa.Column("last_observation_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("case_ref", sa.String(32), nullable=True),
        sa.Column("rtt_avg", sa.Double(), nullable=True),
        sa.Column("loss", sa.Double(), nullable=True),
        sa.Column("jitter", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("ntu_id", name=op.f("pk_ntu_states")),
    )
    op.create_table(
        "case_ref_counters",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_case_ref_counters")),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(32), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("priority", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("dedup_key", sa.String(200), nullable=True),
        sa.Column("ntu_id", sa.String(64), nullable=True),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("service_id", sa.String(64), nullable=True),
        sa.Column("site", sa.String(200), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("outage_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("restored_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("solved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("monitoring_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reopen_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("recurrence_of", sa.Integer(), nullable=True),
        sa.Column("no_support", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("ref", name=op.f("uq_cases_ref")),
        sa.ForeignKeyConstraint(
            ["recurrence_of"], ["cases.id"], name=op.f("fk_cases_recurrence_of_cases")
        ),
    )
    op.create_index(op.f("ix_cases_status"), "cases", ["status"])
    op.create_index(op.f("ix_cases_priority"), "cases", ["priority"])
    op.create_index(op.f("ix_cases_ntu_id"), "cases", ["ntu_id"])
    op.create_index(op.f("ix_cases_customer_id"), "cases", ["customer_id"])
    op.create_index(op.f("ix_cases_updated_at"), "cases", ["updated_at"])
    op.create_index(op.f("ix_cases_dedup_key_id"), "cases", ["dedup_key", "id"])
    op.create_index(
        op.f("ux_cases_open_dedup_key"),
        "cases",
        ["dedup_key"],
        unique=True,
        sqlite_where=sa.text(_OPEN_CASE_PREDICATE),
        postgresql_where=sa.text(_OPEN_CASE_PREDICATE),
    )
    op.create_table(
        "case_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_events")),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_events_case_id_cases"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(op.f("ix_case_events_case_id_id"), "case_events", ["case_id", "id"])


def downgrade() -> None:
    op.drop_table("case_events")
    op.drop_table("cases")
    op.drop_table("case_ref_counters")
    op.drop_table("ntu_states")
    op.drop_table("ntus")
    op.drop_table("customers")
