"""NTUs, upstream nodes and the public status of each NTU (customers: ``caseapi.customers``).

An inventory loader writes ``customers``, ``ntus`` and ``nodes`` through
``caseapi.inventory.sync_inventory``; a detector reports each NTU's status through
``IncidentSink.report_ntu_status`` into ``ntu_states``; the API and the case rules
read them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

import caseapi.customers.models  # noqa: F401  (registers "customers": ntus.customer_id refers to it)
from caseapi.core.base import Base, UTCDateTime


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

    Its public status is kept in ``ntu_states`` under its id (ids are unique across
    NTUs and nodes).
    """

    __tablename__ = "nodes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(64))
    parent: Mapped[str | None] = mapped_column(String(64))
    site: Mapped[str | None] = mapped_column(String(200))


class NtuState(Base):
    """The public status of one NTU (or upstream node), as the detector last reported it.

    Written by ``caseapi.ntus.status.save_statuses`` only; read by ``GET /v1/ntus``,
    ``/v1/ntus/{id}/status``, the "never auto-close while the NTU is down" rule and
    the RFO's probe figures. Kept when the NTU leaves the inventory for a while, so
    that a file that drops an NTU by mistake and gets it back loses nothing.

    Legacy columns, neither read nor written by caseapi: ``confirm_from``,
    ``first_good_at``, ``good_streak`` and ``case_pending`` held the detector's own
    machine state before it moved to a table of its own (whose migration copies them
    from here). They stay so that no migration drops data a detector upgrade still
    needs; new rows get their defaults.
    """

    __tablename__ = "ntu_states"

    ntu_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    outage_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_observation_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: The open P1 (down) case, as the detector knows it.
    case_ref: Mapped[str | None] = mapped_column(String(32))
    # Last burst, for the API and metrics (seconds / fraction).
    rtt_avg: Mapped[float | None] = mapped_column()
    loss: Mapped[float | None] = mapped_column()
    jitter: Mapped[float | None] = mapped_column()
    # SNMP view: WAN interface status, rates, reboots, ICMP filtering.
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

    # -- legacy: the detector's machine state before it moved out (see above) ----------
    confirm_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    first_good_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    good_streak: Mapped[int] = mapped_column(Integer, default=0)
    case_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
