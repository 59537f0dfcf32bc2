"""Mail ingest: ``inbound_mails``, every received mail once, with what became of it.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 10:00:00+00:00

Hand-written to match ``caseapi.mail.inbound``; the test suite compares the result
with ``Base.metadata`` on SQLite and PostgreSQL. The unique ``dedup_key`` and
``(mailbox, uid)`` make a second ingest of one mail fail inside its transaction, so
a crash or a race never stores a mail twice.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_mails",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox", sa.String(200), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=True),
        sa.Column("message_id", sa.String(998), nullable=False),
        sa.Column("dedup_key", sa.String(64), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sender", sa.String(320), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("comment_id", sa.Integer(), nullable=True),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(255), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_inbound_mails_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_mails")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_inbound_mails_dedup_key")),
        sa.UniqueConstraint("mailbox", "uid", name=op.f("uq_inbound_mails_mailbox")),
    )
    op.create_index(op.f("ix_inbound_mails_status"), "inbound_mails", ["status"])
    op.create_index(op.f("ix_inbound_mails_case_id"), "inbound_mails", ["case_id"])
    op.create_index("ix_inbound_mails_sender_received", "inbound_mails", ["sender", "received_at"])


def downgrade() -> None:
    op.drop_table("inbound_mails")
