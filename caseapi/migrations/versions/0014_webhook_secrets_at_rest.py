"""Webhook secrets encrypted at rest: room for the encrypted form.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 10:00:00+00:00

``webhook_subscriptions.secret`` and ``previous_secret`` grow from 100 to 400
characters to hold ``enc:<Fernet token>`` (168 characters for a 49-character
secret). The rows themselves are encrypted at start-up, not here
(``caseapi.notifications.at_rest.seal_webhook_secrets``): the key is the running
process's, which a migration does not see, and a database migrated without a key
must still be sealed once a key is configured. Hand-written to match
``WebhookSubscription``; the test suite compares the result with ``Base.metadata``
on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _resize(length: int, was: int) -> None:
    # A batch copy on SQLite (no ALTER COLUMN there); nothing references this table.
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.alter_column(
            "secret", type_=sa.String(length), existing_type=sa.String(was), existing_nullable=False
        )
        batch.alter_column(
            "previous_secret",
            type_=sa.String(length),
            existing_type=sa.String(was),
            existing_nullable=True,
        )


def upgrade() -> None:
    _resize(400, 100)


def downgrade() -> None:
    # Encrypted values do not fit into 100 characters: PostgreSQL refuses this while
    # any is stored (nothing is truncated); the old version could not read them anyway.
    _resize(100, 400)
