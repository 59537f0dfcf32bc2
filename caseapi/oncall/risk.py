"""SLA at risk: tell the assignee (else the team's on-call person) before a deadline passes.

A running deadline - the first response, the time to repair, a pending commitment -
is *at risk* once it is due within ``cases.at_risk_within`` (the same setting as the
``nms_cases_sla_at_risk`` gauge) and neither met nor breached. ``at_risk`` (pure)
lists them for one case; ``raise_due`` (run by the case ticker after its deadlines)
finds the cases that have one and raises a ``sla_at_risk`` staff alert for each.

Exactly once per deadline: the alert's UNIQUE ``event_key`` names the case, the
clock and the deadline's instant (``case:7:at_risk:time_to_repair:<due>``), so a
second tick, a second ticker or a restart finds it stored and sends nothing, while a
deadline that moves (a priority change, a resumed repair clock) is a new instant and
may alert again. A paused repair clock (waiting on the customer) runs to nothing and
is never at risk; a met or breached deadline neither. It writes no timeline entry: a
forecast is not something that happened to the case, and the customer's timeline
must not change with the staff's alerting (the ``staff_alerts`` row is the record).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.cases.enums import TERMINAL_STATUSES, WORKING_STATUSES, CaseStatus
from caseapi.cases.models import Case, CaseCommitment
from caseapi.oncall import store as oncall_store
from caseapi.oncall.models import StaffAlert
from caseapi.oncall.service import Target, member_of, raise_alert, recipients_for

ALERT: Final = "sla_at_risk"


@dataclass(frozen=True, slots=True)
class AtRisk:
    """One running deadline due soon: ``clock`` (with a commitment's id and kind)."""

    clock: str
    due_at: datetime
    commitment_id: int | None = None
    commitment: str | None = None

    def key(self, case_id: int) -> str:
        """The alert's event key: one alert per case, clock and deadline instant."""
        which = self.clock if self.commitment_id is None else f"commitment:{self.commitment_id}"
        return f"case:{case_id}:at_risk:{which}:{int(self.due_at.timestamp())}"


def at_risk(
    case: Case, commitments: list[CaseCommitment], *, now: datetime, within: timedelta
) -> list[AtRisk]:
    """The deadlines of ``case`` due in ``(now, now + within]`` that still run (pure)."""
    soon = now + within
    found: list[AtRisk] = []
    status = CaseStatus(case.status)
    if status in TERMINAL_STATUSES:
        return found

    def running(due: datetime | None) -> bool:
        return due is not None and now < due <= soon

    if status in WORKING_STATUSES:
        due = case.first_response_due_at
        if running(due) and case.first_responded_at is None and not case.first_response_breached_at:
            assert due is not None
            found.append(AtRisk("first_response", due))
        due = case.ttr_due_at
        if running(due) and case.paused_at is None and case.ttr_breached_at is None:
            assert due is not None
            found.append(AtRisk("time_to_repair", due))
    for c in commitments:
        if c.met_at is None and c.missed_at is None and running(c.due_at):
            found.append(AtRisk("commitment", c.due_at, c.id, str(c.kind)))
    return found


async def raise_due(
    session: AsyncSession, *, now: datetime, within: timedelta, limit: int = 500
) -> int:
    """Raise an ``sla_at_risk`` alert for every new at-risk deadline; return how many
    (caller commits)."""
    if within <= timedelta(0) or not await oncall_store.configured(session):
        return 0
    soon = now + within
    pending = select(CaseCommitment.case_id).where(
        CaseCommitment.met_at.is_(None),
        CaseCommitment.missed_at.is_(None),
        CaseCommitment.due_at > now,
        CaseCommitment.due_at <= soon,
    )
    working = Case.status.in_(WORKING_STATUSES)
    stmt = (
        select(Case)
        .where(
            Case.status.not_in(TERMINAL_STATUSES),
            or_(
                and_(
                    working,
                    Case.first_responded_at.is_(None),
                    Case.first_response_breached_at.is_(None),
                    Case.first_response_due_at > now,
                    Case.first_response_due_at <= soon,
                ),
                and_(
                    working,
                    Case.paused_at.is_(None),
                    Case.ttr_breached_at.is_(None),
                    Case.ttr_due_at > now,
                    Case.ttr_due_at <= soon,
                ),
                Case.id.in_(pending),
            ),
        )
        .order_by(Case.id)
        .limit(limit)
    )
    cases = (await session.scalars(stmt)).all()
    if not cases:
        return 0
    commitments: dict[int, list[CaseCommitment]] = {}
    for c in await session.scalars(
        select(CaseCommitment).where(CaseCommitment.case_id.in_([case.id for case in cases]))
    ):
        commitments.setdefault(c.case_id, []).append(c)
    found = [
        (case, risk)
        for case in cases
        for risk in at_risk(case, commitments.get(case.id, []), now=now, within=within)
    ]
    # Skip what was alerted before without an insert attempt per tick.
    keys = [risk.key(case.id) for case, risk in found]
    done = set(
        await session.scalars(select(StaffAlert.event_key).where(StaffAlert.event_key.in_(keys)))
    )
    raised = 0
    for case, risk in found:
        key = risk.key(case.id)
        if key in done:
            continue
        member = member_of(case.assignee)
        team = case.team_id
        if member is not None:
            target = Target(ALERT, "assignee", member=member)
        elif team is not None:
            target = Target(ALERT, "team", team=team)
        else:
            continue
        recipients, ack_within, level = await recipients_for(session, case, target, now)
        if not recipients:
            continue
        details = {"clock": risk.clock, "due_at": risk.due_at.isoformat()}
        if risk.commitment:
            details["commitment"] = risk.commitment
        alert = await raise_alert(
            session,
            event_key=key,
            case=case,
            kind=ALERT,
            recipients=recipients,
            ack_within=ack_within,
            now=now,
            level=level,
            details=details,
        )
        raised += alert is not None
    return raised
