"""API keys, comments and RFO versions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 00:00:00+00:00

Hand-written to match ``caseapi.auth.models``, ``caseapi.comments.models`` and
``caseapi.rfo.models``; the test suite compares the result with ``Base.metadata`` on
SQLite and PostgreSQL.

Triggers make the database refuse what the services never do: UPDATE or DELETE of a
comment, and UPDATE or DELETE of a published RFO version. (Deleting a case with
comments is therefore refused too: cases are never deleted.)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("salt", sa.String(32), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_index(op.f("ix_api_keys_customer_id"), "api_keys", ["customer_id"])
    op.create_table(
        "comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("author_role", sa.String(16), nullable=False),
        sa.Column("visibility", sa.String(16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comments")),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_comments_case_id_cases"), ondelete="CASCADE"
        ),
    )
    op.create_index(op.f("ix_comments_case_id_id"), "comments", ["case_id", "id"])
    op.create_table(
        "rfo_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("root_cause_category", sa.String(32), nullable=True),
        sa.Column("root_cause", sa.Text(), nullable=True),
        sa.Column("corrective_actions", sa.Text(), nullable=True),
        sa.Column("preventive_actions", sa.Text(), nullable=True),
        sa.Column("facts", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_by", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rfo_versions")),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_rfo_versions_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("case_id", "version", name=op.f("uq_rfo_versions_case_id")),
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in _PG_TRIGGERS:
            op.execute(statement)
    else:
        for statement in _SQLITE_TRIGGERS:
            op.execute(statement)


_SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER {name} BEFORE {action} ON {table}{when}
    BEGIN SELECT RAISE(ABORT, '{message}'); END"""
    for name, action, table, when, message in [
        ("comments_no_update", "UPDATE", "comments", "", "comments are immutable"),
        ("comments_no_delete", "DELETE", "comments", "", "comments are immutable"),
        (
            "rfo_versions_published_no_update",
            "UPDATE",
            "rfo_versions",
            " WHEN OLD.published_at IS NOT NULL",
            "a published RFO version is immutable",
        ),
        (
            "rfo_versions_published_no_delete",
            "DELETE",
            "rfo_versions",
            " WHEN OLD.published_at IS NOT NULL",
            "a published RFO version is immutable",
        ),
    ]
]

_PG_TRIGGERS = [
    """CREATE FUNCTION nms_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% rows are immutable (%)', TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END $$""",
    """CREATE TRIGGER comments_immutable BEFORE UPDATE OR DELETE ON comments
    FOR EACH ROW EXECUTE FUNCTION nms_refuse_change()""",
    """CREATE TRIGGER rfo_versions_published_immutable BEFORE UPDATE OR DELETE ON rfo_versions
    FOR EACH ROW WHEN (OLD.published_at IS NOT NULL) EXECUTE FUNCTION nms_refuse_change()""",
]


def downgrade() -> None:
    # Dropping the tables drops their triggers.
    op.drop_table("rfo_versions")
    op.drop_table("comments")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS nms_refuse_change()")
    op.drop_table("api_keys")
