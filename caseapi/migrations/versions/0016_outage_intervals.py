"""Reports: the outage history (``outage_intervals``), back-filled from the cases.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 10:00:00+00:00

Hand-written to match ``caseapi.reports.models.OutageInterval``; the test suite
compares the result with ``Base.metadata`` on SQLite and PostgreSQL.

Back-fill: one interval per proactive incident case that has an outage start - an
NTU's own P1 (``down``) or P2 (``degraded``) from ``outage_start`` to
``restored_at`` (open while the case is worked and not restored; a finished case
never restored ends when it was solved or closed), and for an upstream outage's
customer case one ``upstream`` interval per affected NTU of that customer. What the
cases do not hold cannot be back-filled: periods of no data before this version
(never stored), and the separate outages of a case that recurred inside its
monitoring window (a case keeps its first outage start and its last restoration,
so they are back-filled as one interval from the first start to the last
restoration).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WORKING = ("new", "in_progress", "waiting_customer", "waiting_supplier")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "outage_intervals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ntu_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("service_id", sa.String(64), nullable=True),
        sa.Column("site", sa.String(200), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("cause", sa.String(16), nullable=False),
        sa.Column("start_at", _TS, nullable=False),
        sa.Column("end_at", _TS, nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("case_ref", sa.String(32), nullable=True),
        sa.Column("counted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outage_intervals")),
    )
    op.create_index(
        "ix_outage_intervals_customer_start", "outage_intervals", ["customer_id", "start_at"]
    )
    op.create_index("ix_outage_intervals_ntu_start", "outage_intervals", ["ntu_id", "start_at"])
    op.create_index("ix_outage_intervals_start", "outage_intervals", ["start_at"])
    op.create_index("ix_outage_intervals_case", "outage_intervals", ["case_id", "end_at"])
    op.create_index("ix_outage_intervals_cause_end", "outage_intervals", ["cause", "end_at"])
    _backfill(op.get_bind())


def downgrade() -> None:
    op.drop_table("outage_intervals")


def _backfill(conn: sa.Connection) -> None:
    cases = sa.table(
        "cases",
        sa.column("id", sa.Integer),
        sa.column("ref", sa.String),
        sa.column("type", sa.String),
        sa.column("priority", sa.String),
        sa.column("status", sa.String),
        sa.column("dedup_key", sa.String),
        sa.column("ntu_id", sa.String),
        sa.column("customer_id", sa.String),
        sa.column("service_id", sa.String),
        sa.column("site", sa.String),
        sa.column("outage_start", _TS),
        sa.column("restored_at", _TS),
        sa.column("solved_at", _TS),
        sa.column("closed_at", _TS),
        sa.column("parent_case_id", sa.Integer),
        sa.column("affected", sa.JSON),
    )
    ntus = sa.table(
        "ntus",
        sa.column("id", sa.String),
        sa.column("service_id", sa.String),
        sa.column("site", sa.String),
    )
    customers = sa.table("customers", sa.column("id", sa.String), sa.column("attributes", sa.JSON))
    intervals = sa.table(
        "outage_intervals",
        sa.column("ntu_id", sa.String),
        sa.column("customer_id", sa.String),
        sa.column("service_id", sa.String),
        sa.column("site", sa.String),
        sa.column("kind", sa.String),
        sa.column("cause", sa.String),
        sa.column("start_at", _TS),
        sa.column("end_at", _TS),
        sa.column("case_id", sa.Integer),
        sa.column("case_ref", sa.String),
        sa.column("counted", sa.Boolean),
    )
    rows = list(
        conn.execute(
            sa.select(cases).where(
                cases.c.type == "incident",
                cases.c.outage_start.is_not(None),
                cases.c.dedup_key.is_not(None),
            )
        ).mappings()
    )
    if not rows:
        return
    affected_of = {row["id"]: row["affected"] or [] for row in rows}
    inventory = {r.id: r for r in conn.execute(sa.select(ntus))}
    contract = {r.id: r.attributes or {} for r in conn.execute(sa.select(customers))}
    out: list[dict[str, Any]] = []
    for row in rows:
        key: str = row["dedup_key"]
        end = row["restored_at"]
        if end is None and row["status"] not in _WORKING:
            end = row["solved_at"] or row["closed_at"]
        terms = contract.get(row["customer_id"], {})
        if key.startswith("ntu:") and row["ntu_id"] is not None:
            kind = "down" if row["priority"] == "P1" else "degraded"
            counted = kind == "down" or terms.get("availability_degraded") is True
            ntu_ids = [row["ntu_id"]]
            cause = "own"
        elif key.startswith("node:") and ":customer:" in key and row["customer_id"] is not None:
            kind, cause = "down", "upstream"
            counted = terms.get("availability_upstream") is not False
            parent = affected_of.get(row["parent_case_id"], [])
            ntu_ids = sorted({a["ntu"] for a in parent if a.get("customer") == row["customer_id"]})
            if not ntu_ids and row["ntu_id"] is not None:
                ntu_ids = [row["ntu_id"]]
        else:
            continue
        for ntu_id in ntu_ids:
            ntu = inventory.get(ntu_id)
            out.append(
                {
                    "ntu_id": ntu_id,
                    "customer_id": row["customer_id"],
                    "service_id": ntu.service_id if ntu is not None else row["service_id"],
                    "site": ntu.site if ntu is not None else row["site"],
                    "kind": kind,
                    "cause": cause,
                    "start_at": row["outage_start"],
                    "end_at": None if end is None else max(end, row["outage_start"]),
                    "case_id": row["id"],
                    "case_ref": row["ref"],
                    "counted": counted,
                }
            )
    if out:
        conn.execute(sa.insert(intervals), out)
