"""Attachments: ``attachments``, the files stored with cases (and their comments).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 10:00:00+00:00

Hand-written to match ``caseapi.attachments.models``; the test suite compares the
result with ``Base.metadata`` on SQLite and PostgreSQL. Triggers refuse UPDATE and
DELETE, as for comments: an attachment is part of the case's record.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MESSAGE = "attachments are immutable"


def upgrade() -> None:
    op.create_table(
        "attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("comment_id", sa.Integer(), nullable=True),
        sa.Column("internal", sa.Boolean(), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("storage", sa.String(16), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        sa.Column("stored_name", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uploaded_by", sa.String(255), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_attachments_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["comment_id"],
            ["comments.id"],
            name=op.f("fk_attachments_comment_id_comments"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(op.f("ix_attachments_case_id_id"), "attachments", ["case_id", "id"])
    op.create_index(op.f("ix_attachments_comment_id"), "attachments", ["comment_id"])
    if op.get_bind().dialect.name == "postgresql":
        # nms_refuse_change() comes with migration 0003.
        op.execute(
            """CREATE TRIGGER attachments_immutable BEFORE UPDATE OR DELETE ON attachments
            FOR EACH ROW EXECUTE FUNCTION nms_refuse_change()"""
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"""CREATE TRIGGER attachments_no_{action.lower()} BEFORE {action} ON attachments
                BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END"""
            )


def downgrade() -> None:
    # Dropping the table drops its triggers.
    op.drop_table("attachments")
