"""Support organisation: teams, members, routing rules, and the team of a case.

Revision ID: 0023
Revises: 0021
Create Date: 2026-12-06 11:00:00+00:00

Hand-written to match ``caseapi.teams.models``; the test suite compares the result
with ``Base.metadata`` on SQLite and PostgreSQL. ``cases.team_id`` is set when a case
is created (routing) and by a forward. Like ``ntu_id`` it carries no foreign key
(teams are only ever deactivated, never deleted, so it always names a row): adding
one on SQLite needs a table rebuild that would drop the full-text triggers of 0013.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("calendar", sa.String(64), nullable=True),
        sa.Column("expertise", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
    )
    op.create_table(
        "members",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("webhook", sa.Text(), nullable=True),
        sa.Column("mqtt", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members")),
    )
    op.create_table(
        "team_members",
        sa.Column("team_id", sa.String(64), nullable=False),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_team_members_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_team_members_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("team_id", "member_id", name=op.f("pk_team_members")),
    )
    op.create_index(op.f("ix_team_members_member_id"), "team_members", ["member_id"])
    op.create_table(
        "routing_rules",
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("team_id", sa.String(64), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_routing_rules_team_id_teams")
        ),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_routing_rules")),
    )
    # A plain ADD COLUMN, no batch: on SQLite a batch rebuilds ``cases`` and would
    # drop its full-text triggers (revision 0013).
    op.add_column("cases", sa.Column("team_id", sa.String(64), nullable=True))
    op.create_index(op.f("ix_cases_team_id"), "cases", ["team_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_cases_team_id"), table_name="cases")
    op.drop_column("cases", "team_id")
    op.drop_table("routing_rules")
    op.drop_index(op.f("ix_team_members_member_id"), table_name="team_members")
    op.drop_table("team_members")
    op.drop_table("members")
    op.drop_table("teams")
