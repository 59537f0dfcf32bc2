"""NTU state from SNMP (WAN status, rates, reboots, ICMP filtering), P2 case, maintenance.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 00:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from caseapi.core.base import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _columns() -> list[sa.Column[object]]:
    return [
        sa.Column("icmp_filtered", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("wan_if_index", sa.Integer(), nullable=True),
        sa.Column("wan_oper_status", sa.Integer(), nullable=True),
        sa.Column("wan_admin_status", sa.Integer(), nullable=True),
        sa.Column("in_bps", sa.Double(), nullable=True),
        sa.Column("out_bps", sa.Double(), nullable=True),
        sa.Column("error_rate", sa.Double(), nullable=True),
        sa.Column("sys_uptime", sa.BigInteger(), nullable=True),
        sa.Column("last_reboot_at", UTCDateTime(), nullable=True),
        sa.Column("reboots", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("degraded_case_ref", sa.String(32), nullable=True),
        sa.Column("degraded_reasons", sa.String(100), nullable=True),
        sa.Column("confirm_from", UTCDateTime(), nullable=True),
        sa.Column("case_pending", sa.Boolean(), nullable=False, server_default=sa.false()),
    ]


def upgrade() -> None:
    # Batch mode, so that SQLite gets the same columns as PostgreSQL.
    with op.batch_alter_table("ntu_states") as batch:
        for column in _columns():
            batch.add_column(column)


def downgrade() -> None:
    with op.batch_alter_table("ntu_states") as batch:
        for column in reversed(_columns()):
            batch.drop_column(column.name)
