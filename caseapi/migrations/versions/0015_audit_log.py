"""The audit log: ``audit_events`` (append-only) and the purge permit ``audit_purge``.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 10:00:00+00:00

Hand-written to match ``caseapi.audit.models``; the test suite compares the result
with ``Base.metadata`` on SQLite and PostgreSQL.

Triggers refuse every UPDATE of ``audit_events`` (and TRUNCATE on PostgreSQL) and
every DELETE but the retention purge's: a row may go only if a permit in
``audit_purge`` (written and removed by the purge inside its own transaction, so never
visible to another) has a cutoff later than the row's time. Both backends compare
like with like: PostgreSQL timestamptz, and on SQLite the fixed-width UTC text that
``UTCDateTime`` stores in both columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MESSAGE = "audit events are append-only"
_PERMITTED = "EXISTS (SELECT 1 FROM audit_purge WHERE OLD.at < audit_purge.purge_before)"


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=True),
        sa.Column("actor_key_prefix", sa.String(16), nullable=True),
        sa.Column("actor_role", sa.String(16), nullable=True),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_type", sa.String(32), nullable=False),
        sa.Column("target_id", sa.String(128), nullable=True),
        sa.Column("client", sa.String(64), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(op.f("ix_audit_events_at"), "audit_events", ["at"])
    op.create_index(op.f("ix_audit_events_actor"), "audit_events", ["actor"])
    op.create_index(op.f("ix_audit_events_customer_id"), "audit_events", ["customer_id"])
    op.create_index(op.f("ix_audit_events_action"), "audit_events", ["action"])
    op.create_index("ix_audit_events_target", "audit_events", ["target_type", "target_id"])
    op.create_table(
        "audit_purge",
        sa.Column("purge_before", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("purge_before", name=op.f("pk_audit_purge")),
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in _PG_TRIGGERS:
            op.execute(statement)
    else:
        for statement in _SQLITE_TRIGGERS:
            op.execute(statement)


_SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END""",
    f"""CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    WHEN NOT {_PERMITTED}
    BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END""",
]

_PG_TRIGGERS = [
    f"""CREATE FUNCTION nms_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' AND {_PERMITTED} THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION '{_MESSAGE} (%)', TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END $$""",
    """CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION nms_audit_append_only()""",
    # TRUNCATE fires no row trigger; refuse it too (SQLite has no TRUNCATE).
    """CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION nms_audit_append_only()""",
]


def downgrade() -> None:
    # Dropping the table drops its triggers.
    op.drop_table("audit_purge")
    op.drop_table("audit_events")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS nms_audit_append_only()")
