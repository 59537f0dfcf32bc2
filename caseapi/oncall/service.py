"""Staff alerts: who is told of which case event, exactly once, until someone acknowledges.

``on_case_event`` is called by ``caseapi.cases.store.record_event`` for every timeline
entry, in the transaction of the change, so an alert exists if and only if its event
does. ``decide`` (pure) maps an entry to the alerts it implies:

- a new P1/P2 with a team (``opened`` or the routing's ``team_assigned``): the team's
  on-call order;
- ``sla_breached`` and ``commitment_missed``: the assignee (unassigned: the team's
  on-call order);
- ``escalated`` (by hand, by a customer, or by a missed deadline): the level it went
  to in the customer's tier - its contacts and management, then its team's on-call
  order (by a customer: the assignee too);
- ``customer_replied``: the assignee (unassigned: the team's on-call order);
- ``unassigned_flagged``: the team's on-call order;
- ``opened``: the tier's ``notify_after`` levels are scheduled (``status = scheduled``,
  ``next_at`` = opening + the delay); when one comes due and the case is still open
  below that level, the level is alerted (``level_due:L2``) like an escalation.

Each alert is one ``staff_alerts`` row with a UNIQUE ``event_key`` (inserted with
``ON CONFLICT DO NOTHING``), so an event seen twice alerts once. Step *k* goes to
the k-th person as a ``staff_alert`` through the outbox (``data["to"]``: staff only,
never customer contacts or webhooks) with a single-use acknowledgement link; ``tick``
(run by the case ticker) moves unacknowledged alerts whose stored ``next_at`` has
come to the next person, with a conditional update on ``step`` so two tickers never
send one step twice. With no organisation file (no rotations, no tiers) nothing happens.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, cast

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.cases.models import Case, CaseEvent
from caseapi.customers.models import Customer
from caseapi.notifications.enums import NotificationKind
from caseapi.notifications.outbox import enqueue
from caseapi.oncall import alerts, wording
from caseapi.oncall import store as oncall_store
from caseapi.oncall.config import ACK_PATH, AlertConfig
from caseapi.oncall.matrix import LEVELS, Level, Tier, tier_for
from caseapi.oncall.models import StaffAlert
from caseapi.teams.repository import member_by_id

logger = logging.getLogger(__name__)

#: How long an alert with no rotation behind it (named contacts) waits for an ack.
DEFAULT_ACK_WITHIN: Final = timedelta(minutes=15)
_URGENT: Final = frozenset({"P1", "P2"})


_config = AlertConfig()


def configure(config: AlertConfig) -> None:
    """Set where ack links point and the fallback (the app factory, the case workers)."""
    global _config
    _config = config


@dataclass(frozen=True, slots=True)
class Target:
    """One alert an event implies: its kind, the key suffix, and who (in order)."""

    alert: str
    key: str
    team: str | None = None  # the team's on-call order
    member: str | None = None  # one named member
    level: Level | None = None  # the tier's level: contacts, else its team


def member_of(actor: str | None) -> str | None:
    """``engineer:alice`` or ``alice`` -> ``alice`` (the member id of a staff actor)."""
    if not actor:
        return None
    if ":" not in actor:
        return actor  # an assignee is stored as the bare staff name
    role, _, name = actor.partition(":")
    return name if role != "customer" and name else None


def decide(
    kind: str,
    data: dict[str, Any],
    *,
    actor: str,
    priority: str,
    team: str | None,
    assignee: str | None,
) -> list[Target]:
    """The alerts a timeline entry implies (pure; see the module docstring)."""
    out: list[Target] = []
    member = member_of(assignee)
    if kind in ("opened", "team_assigned"):
        if priority in _URGENT and team is not None:
            out.append(Target("new_case", f"new:{team}", team=team))
    elif kind in ("sla_breached", "commitment_missed"):
        # The level above hears of it through the ``escalated`` entry the miss causes.
        if member is not None:
            out.append(Target(kind, "assignee", member=member))
        elif team is not None:
            out.append(Target(kind, "team", team=team))
    elif kind == "escalated":
        to = data.get("to")
        if to in LEVELS:
            if actor.startswith("customer"):
                alert = "customer_escalation"
            elif data.get("missed"):
                alert = "sla_breached"  # a missed deadline escalated the case
            else:
                alert = "escalated"
            out.append(Target(alert, "level", level=to))
            if alert == "customer_escalation" and member is not None:
                out.append(Target(alert, "assignee", member=member))
    elif kind == "customer_replied":
        if member is not None:
            out.append(Target("customer_reply", "assignee", member=member))
        elif team is not None:
            out.append(Target("customer_reply", "team", team=team))
    elif kind == "unassigned_flagged" and team is not None:
        out.append(Target("unassigned", "team", team=team))
    return out


async def on_case_event(session: AsyncSession, *, case: Case, event: CaseEvent) -> None:
    """Raise the alerts timeline entry ``event`` of ``case`` implies (caller commits)."""
    team: str | None = getattr(case, "team_id", None)
    targets = decide(
        str(event.kind),
        dict(event.data or {}),
        actor=event.actor,
        priority=str(case.priority),
        team=team,
        assignee=case.assignee,
    )
    if str(event.kind) == "opened":
        targets.append(Target("notify_after", "schedule"))
    if not targets or not await oncall_store.configured(session):
        return  # no organisation file: nobody to alert
    for target in targets:
        if target.alert == "notify_after":
            await _schedule_levels(session, case, event.at)
            continue
        recipients, ack_within, level = await recipients_for(session, case, target, event.at)
        if not recipients:
            continue
        key = (
            f"case:{case.id}:{target.key}"
            if target.alert == "new_case"
            else (f"case:{case.id}:event:{event.id}:{target.key}")
        )
        await raise_alert(
            session,
            event_key=key,
            case=case,
            kind=target.alert,
            recipients=recipients,
            ack_within=ack_within,
            now=event.at,
            level=level,
            details=details_of(target.alert, dict(event.data or {})),
        )


def details_of(alert: str, data: dict[str, Any]) -> dict[str, Any]:
    """What the wording of ``alert`` needs from its timeline entry's ``data``."""
    if alert == "sla_breached" and data.get("missed"):
        return {"missed": list(data["missed"]), "escalated": True}
    if alert == "sla_breached":
        return {"clock": data.get("clock"), "due_at": data.get("due_at")}
    if alert == "commitment_missed":
        return {"clock": "commitment", "commitment": data.get("kind"), "due_at": data.get("due_at")}
    return {}


async def _customer_tier(session: AsyncSession, case: Case) -> Tier | None:
    tiers = await oncall_store.tiers(session)
    if not tiers:
        return None
    customer = await session.get(Customer, case.customer_id) if case.customer_id else None
    return tier_for(tiers, (customer.attributes or {}).get("tier") if customer else None)


async def _schedule_levels(session: AsyncSession, case: Case, at: datetime) -> None:
    """Store the tier's ``notify_after`` alerts of a new case, due at their instants."""
    tier = await _customer_tier(session, case)
    if tier is None:
        return
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    for level, after in tier.notify_after.items():
        stmt = insert(StaffAlert).values(
            event_key=f"case:{case.id}:due:{level}",
            case_id=case.id,
            kind=f"level_due:{level}",
            recipients=[],
            step=-1,
            member_id=None,
            status="scheduled",
            ack_within_seconds=int(DEFAULT_ACK_WITHIN.total_seconds()),
            created_at=at,
            next_at=at + after,
        )
        await session.execute(stmt.on_conflict_do_nothing(index_elements=["event_key"]))


async def _start_scheduled(session: AsyncSession, alert: StaffAlert, now: datetime) -> bool:
    """A ``notify_after`` alert come due: alert its level unless the case is done or
    already at or above it."""
    level = alert.kind.partition(":")[2]
    case = await session.get(Case, alert.case_id) if alert.case_id is not None else None
    done = case is None or case.status.is_terminal or level not in LEVELS
    if not done:
        assert case is not None
        done = LEVELS.index(str(case.escalation_level)) >= LEVELS.index(level)
    recipients: tuple[str, ...] = ()
    ack_within = DEFAULT_ACK_WITHIN
    if not done:
        assert case is not None
        target = Target("level_due", "due", level=cast(Level, level))
        recipients, ack_within, _ = await recipients_for(session, case, target, now)
    moved = await session.execute(
        update(StaffAlert)
        .where(StaffAlert.id == alert.id, StaffAlert.status == "scheduled")
        .values(
            status="sending" if recipients else "cancelled",
            recipients=list(recipients),
            ack_within_seconds=max(1, int(ack_within.total_seconds())),
            next_at=now if recipients else None,
        )
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1 or not recipients:  # type: ignore[attr-defined]
        return False
    await session.refresh(alert)
    return await _apply(session, alert, alerts.Raise(), now, case=case, level=level)


async def recipients_for(
    session: AsyncSession, case: Case, target: Target, at: datetime
) -> tuple[tuple[str, ...], timedelta, str | None]:
    """Who ``target`` alerts, in order, how long each has to acknowledge, and the level."""
    if target.team is not None:
        rotation = await oncall_store.rotation_for(session, target.team)
        if rotation is None:
            return (), DEFAULT_ACK_WITHIN, None
        return rotation.notify_order(at), rotation.ack_within, None
    if target.member is not None:
        return (target.member,), DEFAULT_ACK_WITHIN, None
    assert target.level is not None
    tier = await _customer_tier(session, case)
    if tier is None or target.level not in tier.levels:
        return (), DEFAULT_ACK_WITHIN, target.level
    named = tier.recipients(target.level)
    rotation = await oncall_store.rotation_for(session, tier.levels[target.level].team)
    if named:
        ack_within = rotation.ack_within if rotation else DEFAULT_ACK_WITHIN
        chain = named + tuple(
            m for m in (rotation.notify_order(at) if rotation else ()) if m not in named
        )
        return chain, ack_within, target.level
    if rotation is None:
        return (), DEFAULT_ACK_WITHIN, target.level
    return rotation.notify_order(at), rotation.ack_within, target.level


async def raise_alert(
    session: AsyncSession,
    *,
    event_key: str,
    case: Case,
    kind: str,
    recipients: Sequence[str],
    ack_within: timedelta,
    now: datetime,
    level: str | None = None,
    details: dict[str, Any] | None = None,
) -> StaffAlert | None:
    """Store the alert once (a second raise of ``event_key`` does nothing) and send step 0.

    ``details`` are the facts its wording needs (``caseapi.oncall.wording``).

    Returns:
        The new alert, or ``None`` when ``event_key`` was alerted before.
    """
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(StaffAlert)
        .values(
            event_key=event_key,
            case_id=case.id,
            kind=kind,
            recipients=list(recipients),
            step=-1,
            member_id=None,
            status="sending",
            ack_within_seconds=max(1, int(ack_within.total_seconds())),
            created_at=now,
            next_at=now,
            details=details or None,
        )
        .on_conflict_do_nothing(index_elements=["event_key"])
        .returning(StaffAlert.id)
    )
    alert_id = (await session.execute(stmt)).scalar_one_or_none()
    if alert_id is None:
        return None
    alert = await session.get(StaffAlert, alert_id)
    assert alert is not None
    await _apply(session, alert, alerts.Raise(), now, case=case, level=level)
    return alert


def _state(alert: StaffAlert) -> alerts.AlertState:
    return alerts.AlertState(
        recipients=tuple(alert.recipients),
        ack_within=timedelta(seconds=alert.ack_within_seconds),
        step=alert.step,
        status="sending" if alert.status == "sending" else alert.status,  # type: ignore[arg-type]
        next_at=alert.next_at,
        acked_by=alert.acked_by,
    )


async def _apply(
    session: AsyncSession,
    alert: StaffAlert,
    event: alerts.Event,
    now: datetime,
    *,
    case: Case | None = None,
    level: str | None = None,
) -> bool:
    """Run ``event`` through the machine and store/send the result; False if another
    process moved the alert first (nothing is sent then)."""
    before = alert.step
    state, actions = alerts.step(_state(alert), event, now)
    values: dict[str, Any] = {
        "step": state.step,
        "status": state.status,
        "next_at": state.next_at,
        "acked_by": state.acked_by,
    }
    token: str | None = None
    sends = [a for a in actions if isinstance(a, alerts.Send)]
    if sends:
        token = secrets.token_urlsafe(32)
        values.update(member_id=sends[0].member, sent_at=now, ack_token_hash=token_hash(token))
    if state.status == "acked":
        values["acked_at"] = now
    moved = await session.execute(
        update(StaffAlert)
        .where(StaffAlert.id == alert.id, StaffAlert.step == before, StaffAlert.status == "sending")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        return False
    await session.refresh(alert)
    for action in actions:
        if isinstance(action, alerts.Send):
            assert token is not None
            case = case or await session.get(Case, alert.case_id)
            await _send(session, alert, action, case, token, now, level)
        else:
            logger.error(
                "staff alert %s (%s, case %s): nobody acknowledged; tried %s",
                alert.id,
                alert.kind,
                alert.case_id,
                ", ".join(alert.recipients),
            )
            # Inside the conditional update's transaction: the fallback is told once.
            case = case or await session.get(Case, alert.case_id)
            await _send_fallback(session, alert, case, now)
    return True


def token_hash(token: str) -> str:
    """What is stored of an ack-link secret (SHA-256 hex): a leaked table acks nothing."""
    return hashlib.sha256(token.encode()).hexdigest()


async def _send(
    session: AsyncSession,
    alert: StaffAlert,
    action: alerts.Send,
    case: Case | None,
    token: str,
    now: datetime,
    level: str | None,
) -> None:
    contact = await member_contact(session, action.member)
    if contact is None or not contact.get("email"):
        logger.warning("staff alert %s: member %s has no e-mail address", alert.id, action.member)
        return
    language = contact.get("language") or "en"
    ack_url = f"{_config.public_url.rstrip('/')}{ACK_PATH}?token={alert.id}.{token}"
    data = _message(alert, case, now, level=level, language=language)
    data.update(
        to=[contact["email"]],
        member=action.member,
        timezone=contact.get("timezone") or "",
        step=action.step + 1,
        ack_url=ack_url,
        next_step=wording.next_step(ack_url=ack_url, tried=(), language=language),
    )
    if contact.get("webhook"):
        data["webhook"] = contact["webhook"]
    if contact.get("mqtt"):
        data["mqtt"] = True
    await enqueue(
        session,
        case_id=alert.case_id,
        customer_id=(case.customer_id if case is not None else None) or "-",
        kind=NotificationKind.STAFF_ALERT,
        data=data,
        at=now,
    )


def _message(
    alert: StaffAlert, case: Case | None, now: datetime, *, level: str | None, language: str
) -> dict[str, Any]:
    """The outbox data every message of ``alert`` carries (its wording in ``language``)."""
    shown_level = level or (str(case.escalation_level) if case is not None else "")
    details = dict(alert.details or {})
    data: dict[str, Any] = {
        "staff_alert_id": alert.id,
        "alert": alert.kind,
        "headline": wording.headline(
            alert.kind,
            details=details,
            priority=str(case.priority) if case is not None else "",
            level=shown_level,
            now=now,
            language=language,
        ),
        "language": language,
        "level": shown_level,
        "team": getattr(case, "team_id", None) or "",
        "at": now,
    }
    # The structured facts for machines (webhooks, MQTT): which clock, due when.
    data.update({k: details[k] for k in ("clock", "due_at", "commitment") if details.get(k)})
    if case is not None:
        data.update(
            ref=case.ref,
            priority=str(case.priority),
            status=str(case.status),
            summary=case.summary,
        )
    return data


async def _send_fallback(
    session: AsyncSession, alert: StaffAlert, case: Case | None, now: datetime
) -> None:
    """Tell the configured fallback (e-mail and / or webhook) that nobody acknowledged."""
    if not _config.fallback_email and not _config.fallback_webhook:
        return
    data = _message(alert, case, now, level=None, language="en")
    data.update(
        headline=wording.unacknowledged(str(data["headline"])),
        to=[_config.fallback_email] if _config.fallback_email else [],
        member="NOC",  # whom the mail greets; no MQTT topic (no ``mqtt`` flag)
        fallback=True,
        step=len(alert.recipients) + 1,
        ack_url="",
        tried=list(alert.recipients),
        next_step=wording.next_step(ack_url=None, tried=alert.recipients),
    )
    if _config.fallback_webhook:
        data["webhook"] = _config.fallback_webhook
    await enqueue(
        session,
        case_id=alert.case_id,
        customer_id=(case.customer_id if case is not None else None) or "-",
        kind=NotificationKind.STAFF_ALERT,
        data=data,
        at=now,
    )


async def member_contact(session: AsyncSession, member_id: str) -> dict[str, Any] | None:
    """E-mail, language, zone and channels of an active member of the organisation file."""
    member = await member_by_id(session, member_id)
    if member is None:
        return None
    return {
        "email": member.email,
        "language": member.language,
        "webhook": member.webhook,
        "mqtt": member.mqtt,
        "timezone": member.timezone,
    }


async def tick(session: AsyncSession, *, now: datetime, limit: int = 100) -> int:
    """Move every alert whose ``next_at`` has come to its next person; return how many."""
    stmt = (
        select(StaffAlert)
        .where(StaffAlert.status.in_(("sending", "scheduled")), StaffAlert.next_at <= now)
        .order_by(StaffAlert.next_at, StaffAlert.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    moved = 0
    for alert in (await session.scalars(stmt)).all():
        if alert.status == "scheduled":
            moved += await _start_scheduled(session, alert, now)
        else:
            moved += await _apply(session, alert, alerts.Tick(), now)
    return moved


async def acknowledge(session: AsyncSession, alert: StaffAlert, *, by: str, now: datetime) -> bool:
    """Stop ``alert`` (acknowledged ``by``); False when it was no longer sending."""
    return await _apply(session, alert, alerts.Ack(by), now)
