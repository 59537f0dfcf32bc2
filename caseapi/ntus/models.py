"""Customers, NTUs and the detector's durable per-NTU state.

The inventory loader (``nms.inventory.loader``) writes ``customers`` and ``ntus``; the
detector writes ``ntu_states``; the API reads all three.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from caseapi.core.base import Base, UTCDateTime


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    contract_status: Mapped[str] = mapped_column(String(16), default="active")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Ntu(Base):
    __tablename__ = "ntus"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    service_id: Mapped[str | None] = mapped_column(String(64))
    site: Mapped[str | None] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(64), unique=True)
    parent: Mapped[str | None] = mapped_column(String(64))
    # Probe overrides and free-form inventory fields, as given in the inventory file.
    probe: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Node(Base):
    """An upstream node (PoP, aggregation switch, supplier circuit) from the inventory.

    Its detector state is kept in ``ntu_states`` under its id (ids are unique across
    NTUs and nodes).
    """

    __tablename__ = "nodes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(64))
    parent: Mapped[str | None] = mapped_column(String(64))
    site: Mapped[str | None] = mapped_column(String(200))


class NtuState(Base):
    """The detector's state for one NTU; written every time it changes.

    Kept even when the NTU leaves the inventory for a while, so that a file that
    drops an NTU by mistake and gets it back loses nothing.
    """

    __tablename__ = "ntu_states"

    ntu_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    outage_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    confirm_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    first_good_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    good_streak: Mapped[int] = mapped_column(Integer, default=0)
    last_observation_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    case_ref: Mapped[str | None] = mapped_column(String(32))
    # Confirmed down, but the case service failed: the open is retried until it works.
    case_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Last burst, for the API and metrics (seconds / fraction).
    rtt_avg: Mapped[float | None] = mapped_column()
    loss: Mapped[float | None] = mapped_column()
    jitter: Mapped[float | None] = mapped_column()
    # SNMP view (issue 4): WAN interface status, rates, reboots, ICMP filtering.
    icmp_filtered: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    wan_if_index: Mapped[int | None] = mapped_column(Integer)
    wan_oper_status: Mapped[int | None] = mapped_column(Integer)
    wan_admin_status: Mapped[int | None] = mapped_column(Integer)
    in_bps: Mapped[float | None] = mapped_column()
    out_bps: Mapped[float | None] = mapped_column()
    error_rate: Mapped[float | None] = mapped_column()
    sys_uptime: Mapped[int | None] = mapped_column(BigInteger)
    last_reboot_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reboots: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The open P2 (degraded) case, and why.
    degraded_case_ref: Mapped[str | None] = mapped_column(String(32))
    degraded_reasons: Mapped[str | None] = mapped_column(String(100))
