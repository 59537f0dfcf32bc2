"""The detector's own tables: its private, durable per-NTU machine state.

Nothing else reads or writes them: the public status of an NTU (what the API shows)
goes to the case service through ``IncidentSink.report_ntu_status``. The schema has
its own ``MetaData`` and Alembic history (``nms/detector/migrations``), so it never
mixes with the case service's.

SQLite stores no time zone, so ``UTCDateTime`` normalises on the way in (must be
aware; converted to UTC) and re-attaches UTC on the way out. PostgreSQL gets a real
``timestamptz``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Double, Integer, MetaData, String, false
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class DetectorBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class DetectorNtuState(DetectorBase):
    """The machine state of one NTU or upstream node; written when it changes.

    Kept when the NTU leaves the inventory for a while, so that a file that drops an
    NTU by mistake and gets it back loses nothing.
    """

    __tablename__ = "detector_ntu_states"

    ntu_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The availability machine (nms.detector.availability.NtuState).
    status: Mapped[str] = mapped_column(String(16))
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    outage_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    confirm_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    first_good_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    good_streak: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_observation_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The open P1 (or upstream incident), and a confirmed outage whose case could not
    # be opened yet (retried until it is).
    case_ref: Mapped[str | None] = mapped_column(String(32))
    case_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The open P2 (degraded) case, and why.
    degraded_case_ref: Mapped[str | None] = mapped_column(String(32))
    degraded_reasons: Mapped[str | None] = mapped_column(String(100))
    # The SNMP view (nms.detector.fusion.SnmpView): the base of reboot detection and
    # of the ICMP-filtered rule after a restart.
    icmp_filtered: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    wan_if_index: Mapped[int | None] = mapped_column(Integer)
    wan_oper_status: Mapped[int | None] = mapped_column(Integer)
    wan_admin_status: Mapped[int | None] = mapped_column(Integer)
    in_bps: Mapped[float | None] = mapped_column(Double)
    out_bps: Mapped[float | None] = mapped_column(Double)
    error_rate: Mapped[float | None] = mapped_column(Double)
    sys_uptime: Mapped[int | None] = mapped_column(BigInteger)
    last_reboot_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reboots: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
