"""The detector's own state table, resumed from the legacy ``ntu_states``.

Revision ID: 0001
Revises:
Create Date: 2027-01-01 00:00:00+00:00

Hand-written to match ``nms.detector.models``; the tests check that the result equals
``DetectorBase.metadata`` on SQLite and PostgreSQL.

Before this table existed the detector kept its machine state in the case service's
``ntu_states``. An upgraded installation must resume every outage where it was ("a
restart loses no timer"), so the rows found there are copied, with whichever of the
machine-state columns that table has.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from nms.detector.models import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LEGACY = "ntu_states"

# Frozen copy of the machine-state columns: a migration must not change when the
# model code does.
_COPIED = (
    "ntu_id",
    "status",
    "since",
    "outage_start",
    "confirm_from",
    "first_good_at",
    "good_streak",
    "last_observation_at",
    "last_success_at",
    "case_ref",
    "case_pending",
    "degraded_case_ref",
    "degraded_reasons",
    "icmp_filtered",
    "wan_if_index",
    "wan_oper_status",
    "wan_admin_status",
    "in_bps",
    "out_bps",
    "error_rate",
    "sys_uptime",
    "last_reboot_at",
    "reboots",
)
_REQUIRED = frozenset({"ntu_id", "status", "since"})


def upgrade() -> None:
    op.create_table(
        "detector_ntu_states",
        sa.Column("ntu_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("since", UTCDateTime(), nullable=False),
        sa.Column("outage_start", UTCDateTime(), nullable=True),
        sa.Column("confirm_from", UTCDateTime(), nullable=True),
        sa.Column("first_good_at", UTCDateTime(), nullable=True),
        sa.Column("good_streak", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_observation_at", UTCDateTime(), nullable=True),
        sa.Column("last_success_at", UTCDateTime(), nullable=True),
        sa.Column("case_ref", sa.String(32), nullable=True),
        sa.Column("case_pending", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("degraded_case_ref", sa.String(32), nullable=True),
        sa.Column("degraded_reasons", sa.String(100), nullable=True),
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
        sa.PrimaryKeyConstraint("ntu_id", name=op.f("pk_detector_ntu_states")),
    )
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table(_LEGACY):
        return
    legacy = {column["name"] for column in inspector.get_columns(_LEGACY)}
    if not legacy >= _REQUIRED:
        return
    names = ", ".join(name for name in _COPIED if name in legacy)
    # Same column types on both sides: the values (SQLite's timestamp strings too) are
    # copied as stored.
    op.execute(f"INSERT INTO detector_ntu_states ({names}) SELECT {names} FROM {_LEGACY}")


def downgrade() -> None:
    op.drop_table("detector_ntu_states")
