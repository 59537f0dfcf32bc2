"""The support organisation: teams, their members, and the routing rules.

The organisation file (``nms`` reads it) is synced here through
``caseapi.organisation``. A team or member dropped from the file is kept, marked
``active = false``: old cases still name their team (``cases.team_id``) and the
history of who worked a case stays readable.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from caseapi.core.base import Base

#: Team and member ids (``[a-z0-9-]+`` in the file; members are staff names).
ID_LENGTH = 64


class Team(Base):
    """A team cases are routed to (``level``: L1, L2, L3 or ``none``)."""

    __tablename__ = "teams"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(8))
    timezone: Mapped[str] = mapped_column(String(64))
    calendar: Mapped[str | None] = mapped_column(String(64))
    #: ``{"services": [...], "regions": [...], "models": [...], "subjects": [...]}``.
    expertise: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class Member(Base):
    """A person of support; ``id`` is the name part of the staff actor ``engineer:<id>``."""

    __tablename__ = "members"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    timezone: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(16))
    webhook: Mapped[str | None] = mapped_column(Text)
    mqtt: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class TeamMember(Base):
    """``member_id`` belongs to ``team_id`` (in the file's order: ``position``)."""

    __tablename__ = "team_members"

    team_id: Mapped[str] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[str] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)


class RoutingRuleRow(Base):
    """One routing rule; the lowest ``position`` that matches wins.

    ``conditions`` maps a fact (``source``, ``priority``, ``type``, ``service``,
    ``region``, ``subject``, ``customer``) to the values that match; empty: any case.
    """

    __tablename__ = "routing_rules"

    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id"))
    conditions: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
