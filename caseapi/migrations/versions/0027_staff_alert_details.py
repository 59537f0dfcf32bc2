"""``staff_alerts.details``: the facts an alert's wording needs on every step.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06 13:00:00+00:00

Hand-written to match ``caseapi.oncall.models``; the test suite compares the result
with ``Base.metadata`` on SQLite and PostgreSQL. Older rows keep ``NULL`` (read as no
details: their messages are worded from the alert kind alone).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staff_alerts") as batch:
        batch.add_column(sa.Column("details", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("staff_alerts") as batch:
        batch.drop_column("details")
