"""The outage history: one row per outage or degradation interval of one NTU.

Written by the incident path (``caseapi.reports.recorder``) in the same transaction
as the case it belongs to is opened, upgraded or restored, and from the detector's
status reports for periods of no data. ``end_at`` is ``NULL`` while the interval is
open. ``ntu_id``, ``customer_id`` and ``case_id`` carry no foreign key for the same
reason ``cases`` carries none on the inventory: the history outlives the inventory.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from caseapi.core.base import Base, UTCDateTime


class OutageInterval(Base):
    __tablename__ = "outage_intervals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ntu_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str | None] = mapped_column(String(64))
    service_id: Mapped[str | None] = mapped_column(String(64))
    site: Mapped[str | None] = mapped_column(String(200))
    #: ``OutageKind``: ``down`` or ``degraded``.
    kind: Mapped[str] = mapped_column(String(16))
    #: ``OutageCause``: ``own``, ``upstream`` or ``no_data``.
    cause: Mapped[str] = mapped_column(String(16))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    case_id: Mapped[int | None] = mapped_column(Integer)
    case_ref: Mapped[str | None] = mapped_column(String(32))
    #: Whether the customer's contract counts it as downtime (decided when written).
    counted: Mapped[bool] = mapped_column(Boolean)

    __table_args__ = (
        # Period queries: a customer's (or an NTU's) intervals that start before the
        # period's end; the open ones are found by case or by cause.
        Index("ix_outage_intervals_customer_start", "customer_id", "start_at"),
        Index("ix_outage_intervals_ntu_start", "ntu_id", "start_at"),
        Index("ix_outage_intervals_start", "start_at"),
        Index("ix_outage_intervals_case", "case_id", "end_at"),
        Index("ix_outage_intervals_cause_end", "cause", "end_at"),
    )
