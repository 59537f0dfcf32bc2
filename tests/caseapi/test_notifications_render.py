"""Templates: every kind renders its facts, in UTC, and nothing internal leaks."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from caseapi.cases.models import CaseEvent
from caseapi.cases.notices import kind_for_event
from caseapi.notifications.config import DEFAULT_DISPATCHER
from caseapi.notifications.enums import MAINTENANCE_KINDS, NO_CASE_KINDS, NotificationKind
from caseapi.notifications.render import Envelope, public_payload, render_email

CET = timezone(timedelta(hours=1))
FACTS = {
    "ref": "CS-2026-000042",
    "status": "solved",
    "priority": "P1",
    "summary": "ntu-1 down",
    "site": "Main office",
    "outage_start": "2026-03-01T12:50:00+01:00",  # stored in another zone: shown in UTC
    "detected_at": datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
    "restored_at": "2026-03-01T13:00:00+00:00",
    "monitoring_until": "2026-03-02T13:00:00+00:00",
    "closed_at": "2026-03-03T09:00:00+00:00",
    "at": "2026-03-01T13:05:00+00:00",
    "body": "The supplier replaced the line card.",
    "version": 2,
    "waiting_since": "2026-03-01T10:00:00+00:00",
    "closes_at": "2026-03-05T10:00:00+00:00",
    "maintenance_id": "MW-7",
    "title": "PoP router upgrade",
    "maintenance_kind": "planned",
    "starts_at": datetime(2026, 3, 20, 1, 0, tzinfo=CET),
    "ends_at": "2026-03-20T04:00:00+00:00",
    "services": ["svc-1", "svc-2"],
    "expected_impact": "up to 15 minutes of outage",
    "completed_at": "2026-03-20T03:10:00+00:00",
    "impact_start": "2026-03-20T01:05:00+00:00",
    "impact_end": "2026-03-20T01:12:00+00:00",
    "actual_impact": "7 minutes of outage",
    "previous_ref": "CS-2026-000041",
    "mail_subject": "Line down again",
    "reason": "contract_expired",
    # A staff alert's own facts (staff_alert)
    "alert": "new_case",
    "level": "L1",
    "team": "l1-noc",
    "step": 1,
    "ack_url": "http://127.0.0.1:8000/v1/alerts/ack?token=1.abc",
    # Never shown to a customer:
    "dedup_key": "ntu:ntu-1:down",
    "internal_note": "supplier contract is about to lapse",
    "actor": "engineer:alice",
}


def envelope(kind: NotificationKind) -> Envelope:
    return Envelope(
        event_id="0b5e3a8e-0000-4000-8000-000000000001",
        kind=kind.value,
        customer_id="cust-1",
        customer_name="Cust One",
        case_ref=None if kind in MAINTENANCE_KINDS | NO_CASE_KINDS else "CS-2026-000042",
        created_at=datetime(2026, 3, 1, 13, 5, tzinfo=UTC),
        data=FACTS,
    )


@pytest.mark.parametrize("kind", list(NotificationKind))
def test_every_kind_renders_its_facts_and_nothing_internal(kind: NotificationKind) -> None:
    mail = render_email(envelope(kind))
    everything = mail.subject + mail.text + mail.html + str(public_payload(envelope(kind)))
    assert "(not known yet)" not in mail.text
    for secret in ("ntu:ntu-1:down", "supplier contract", "alice"):
        assert secret not in everything
    if kind in MAINTENANCE_KINDS:
        assert mail.subject.startswith("[Maintenance MW-7] ")
        assert "20 March 2026, 00:00 (UTC)" in mail.text or kind not in {
            NotificationKind.MAINTENANCE_ANNOUNCED,
            NotificationKind.MAINTENANCE_REMINDER,
        }
    elif kind in NO_CASE_KINDS:
        assert mail.subject == "Re: Line down again - no case opened"
        assert "your contract with us has expired" in mail.text
        assert "CS-2026" not in everything
        return
    else:
        assert mail.subject.startswith("[CS-2026-000042] ")
        assert "status: solved" in mail.subject
        assert "Case: CS-2026-000042" in mail.text
    assert "What happened:" in mail.text and "What is next:" in mail.text


def test_times_are_utc_by_default_and_completed_maintenance_has_the_real_impact() -> None:
    opened = render_email(envelope(NotificationKind.CASE_OPENED)).text
    assert "1 March 2026, 11:50 (UTC)" in opened  # 12:50 CET
    completed = render_email(envelope(NotificationKind.MAINTENANCE_COMPLETED)).text
    assert "7 minutes of outage" in completed
    assert "20 March 2026, 01:05 (UTC)" in completed
    assert "20 March 2026, 01:12 (UTC)" in completed
    update = render_email(envelope(NotificationKind.PUBLIC_UPDATE))
    assert "line card" in update.text and "line card" in update.html


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        ("opened", {}, NotificationKind.CASE_OPENED),
        ("comment_added", {"visibility": "public"}, NotificationKind.PUBLIC_UPDATE),
        ("comment_added", {"visibility": "internal"}, None),
        ("comment_added", {"visibility": "public", "author_role": "customer"}, None),
        ("restored", {"from": "new", "to": "solved"}, NotificationKind.CASE_SOLVED),
        ("status_changed", {"from": "new", "to": "solved"}, NotificationKind.CASE_SOLVED),
        ("status_changed", {"from": "new", "to": "in_progress"}, None),
        ("rfo_published", {}, NotificationKind.RFO_PUBLISHED),
        ("closed", {"to": "closed"}, NotificationKind.CASE_CLOSED),
        ("escalated", {}, None),
        ("reminder_sent", {}, None),
    ],
)
def test_timeline_entries_map_to_notifications(
    kind: str, data: dict[str, str], expected: NotificationKind | None
) -> None:
    event = CaseEvent(
        case_id=1, at=datetime(2026, 3, 1, tzinfo=UTC), kind=kind, actor="x", data=data
    )
    assert kind_for_event(event) is expected


def test_settings_refuse_a_claim_shorter_than_a_send() -> None:
    with pytest.raises(ValueError, match="claim_timeout"):
        replace(DEFAULT_DISPATCHER, send_timeout=60, claim_timeout=timedelta(seconds=30))
    with pytest.raises(ValueError, match="mqtt_url"):
        replace(DEFAULT_DISPATCHER, mqtt_url="http://broker")
