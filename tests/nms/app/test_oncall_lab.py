"""End to end: an NTU goes down under ``nms run`` and the on-call engineer is paged.

Real subprocess over the simulated lab with compressed timers (``nms_process.FAST``,
``ack_within`` 6 s, a first-response target of 25 s): NTU down -> P1 -> routed to
l1-noc -> alice (on call) gets the mail at this test's SMTP receiver and the signed
webhook at its HTTP receiver; nobody acknowledges -> bob gets it; bob acknowledges
with the link in his mail -> nobody else is alerted, and each step went out exactly
once, also across a restart (the restart with a re-notify still pending is covered on
a fake clock in tests/caseapi/test_staff_alerts.py). Nobody answers the customer: the
first-response breach escalates to L2 and alerts carol, the matrix's L2 contact; the
case is assigned to alice and the customer replies: alice is alerted.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from caseapi.notifications.signing import verify
from nms.lab import LabFleet
from tests.caseapi.notification_fixtures import SmtpSink, smtp_sink_fixture  # noqa: F401
from tests.lab_fixtures import LabFleetFactory, lab_fleet  # noqa: F401 - fixture
from tests.nms.nms_process import NmsProcess, running, wait_for, write_inventory

pytestmark = [pytest.mark.lab, pytest.mark.slow]

SECRET = "e2e-staff-webhook-secret"
ACK_WITHIN = 6.0


class _Hooks(ThreadingHTTPServer):
    received: list[tuple[dict[str, str], bytes]]


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        assert isinstance(self.server, _Hooks)
        self.server.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def hooks() -> Iterator[_Hooks]:
    server = _Hooks(("127.0.0.1", 0), _Handler)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _organisation(path: Path, hook_url: str) -> None:
    monday = datetime.now(UTC).date() - timedelta(days=datetime.now(UTC).weekday())
    path.write_text(
        f"""\
teams:
  - {{id: l1-noc, name: L1 NOC, level: L1, timezone: UTC, members: [alice, bob]}}
  - {{id: l2-access, name: L2 access, level: L2, timezone: UTC, members: [carol]}}
members:
  - {{id: alice, name: Alice, email: alice@noc.example, timezone: UTC, webhook: "{hook_url}"}}
  - {{id: bob, name: Bob, email: bob@noc.example, timezone: UTC}}
  - {{id: carol, name: Carol, email: carol@access.example, timezone: UTC}}
routing:
  - team: l1-noc
oncall:
  - team: l1-noc
    rotation: weekly
    handoff: "{("mon", "tue", "wed", "thu", "fri", "sat", "sun")[monday.weekday()]} 00:00"
    start: {monday.isoformat()}
    order: [alice, bob]
    ack_within: {ACK_WITHIN:.0f}s
escalation:
  - tier: standard
    levels:
      L1: {{team: l1-noc}}
      L2: {{team: l2-access, contacts: [carol]}}
""",
        encoding="utf-8",
    )


def _staff_mails(sink: SmtpSink, domain: str = "@noc.example") -> list[tuple[str, Message]]:
    return [
        (rcpt[0], msg)
        for rcpt, msg in zip(sink.recipients, sink.messages, strict=True)
        if rcpt[0].endswith(domain)
    ]


def _ack_link(message: Message) -> str:
    text = message.get_payload(0).get_payload(decode=True).decode()  # type: ignore[union-attr]
    match = re.search(r"(http://\S+/v1/alerts/ack\?token=\S+)", text)
    assert match is not None, text
    return match.group(1)


def test_down_ntu_pages_the_on_call_then_the_next_until_acknowledged(
    lab_fleet: LabFleetFactory,  # noqa: F811
    smtp_sink: SmtpSink,
    hooks: _Hooks,
    tmp_path: Path,
) -> None:
    fleet: LabFleet = lab_fleet(hosts=1, ntus_per_host=1)
    inventory = tmp_path / "inventory.yaml"
    write_inventory(inventory, fleet.addresses)
    organisation = tmp_path / "organisation.yaml"
    hook_url = f"http://127.0.0.1:{hooks.server_address[1]}/page"
    _organisation(organisation, hook_url)
    nms = NmsProcess(workdir=tmp_path, inventory=inventory, database=tmp_path / "nms.db")
    env = {
        "NMS_ORGANISATION__FILE": str(organisation),
        "NMS_CASES__TICKER_INTERVAL": "500ms",
        "NMS_CASES__FIRST_RESPONSE": "25s",
        # At-risk alerts off: with a 25 s target every case is at risk from the start
        # (they have their own fake-clock tests in tests/caseapi/test_staff_alerts_risk.py).
        "NMS_CASES__AT_RISK_WITHIN": "0s",
        "NMS_NOTIFICATIONS__INTERVAL": "500ms",
        "NMS_NOTIFICATIONS__SMTP_HOST": "127.0.0.1",
        "NMS_NOTIFICATIONS__SMTP_PORT": str(smtp_sink.port),
        "NMS_NOTIFICATIONS__STAFF_WEBHOOK_SECRET": SECRET,
        "NMS_NOTIFICATIONS__STAFF_ACK_BASE_URL": nms.url,
        "NMS_NOTIFICATIONS__WEBHOOKS__ALLOW_HTTP": "true",
        "NMS_NOTIFICATIONS__WEBHOOKS__ALLOW_NETWORKS": '["127.0.0.0/8"]',
    }
    with running(nms, **env):
        nms.wait_status("ntu-000", "up", timeout=15)
        fleet.drop_address(fleet.addresses[0])
        case = wait_for("the P1 case", lambda: nms.cases(), timeout=20)[0]
        assert case["priority"] == "P1"
        first = wait_for("alice's page", lambda: _staff_mails(smtp_sink), timeout=15)
        assert [to for to, _ in first] == ["alice@noc.example"]
        assert case["ref"] in str(first[0][1]["Subject"])
        hook = wait_for("alice's webhook", lambda: hooks.received, timeout=10)[0]
        headers, body = hook
        assert headers["x-nms-event"] == "staff_alert"
        assert verify(headers["x-nms-signature"], body, SECRET, now=time.time())
        assert json.loads(body)["data"]["alert"] == "new_case"
        # Nobody acknowledges: bob, once, after ack_within.
        second = wait_for(
            "bob's page", lambda: _staff_mails(smtp_sink)[1:], timeout=ACK_WITHIN + 10
        )
        assert [to for to, _ in second] == ["bob@noc.example"]
        # Bob acknowledges with the link in his mail (no key), once.
        acked = httpx.get(_ack_link(second[0][1]), timeout=10)
        assert acked.status_code == 200, acked.text
        assert acked.json()["acked_by"] == "engineer:bob"
        # A restart sends nothing twice, and nobody else is paged.
        nms.stop()
        nms.start(**env)
        assert httpx.get(_ack_link(second[0][1]), timeout=10).status_code == 409
        time.sleep(ACK_WITHIN + 2)
        assert _paged(smtp_sink, "New P1 case") == ["alice@noc.example", "bob@noc.example"]
        assert [json.loads(body)["data"]["alert"] for _, body in hooks.received].count(
            "new_case"
        ) == 1
        # Nobody answered the customer within 25 s: the breach escalates to L2, whose
        # contact in the matrix is carol (and the on-call alice hears of the breach).
        l2 = wait_for(
            "carol's escalation", lambda: _staff_mails(smtp_sink, "@access.example"), timeout=40
        )
        assert [to for to, _ in l2] == ["carol@access.example"]
        assert "SLA breached: first response - escalated to L2" in str(l2[0][1]["Subject"])
        # Assigned to alice, the case gets a customer reply: alice is told, once.
        ref = case["ref"]
        headers = {"Authorization": f"Bearer {nms.key}"}
        assigned = httpx.post(
            f"{nms.url}/v1/cases/{ref}/assign", json={"assignee": "alice"}, headers=headers
        )
        assert assigned.status_code == 200, assigned.text
        customer = {"Authorization": f"Bearer {nms.make_key('customer', 'cust1')}"}
        replied = httpx.post(
            f"{nms.url}/v1/cases/{ref}/comments",
            json={"body": "Still down here, any news?"},
            headers=customer,
        )
        assert replied.status_code == 201, replied.text
        wait_for(
            "alice's customer-reply alert",
            lambda: _paged(smtp_sink, "Customer replied"),
            timeout=15,
        )
        time.sleep(2)
        assert _paged(smtp_sink, "Customer replied") == ["alice@noc.example"]
        assert _paged(smtp_sink, "New P1 case") == ["alice@noc.example", "bob@noc.example"]
        assert len(_staff_mails(smtp_sink, "@access.example")) == 1


def _paged(sink: SmtpSink, headline: str) -> list[str]:
    """Who got a staff alert whose subject has ``headline``, in order."""
    return [
        to
        for domain in ("@noc.example", "@access.example")
        for to, message in _staff_mails(sink, domain)
        if headline in str(message["Subject"])
    ]
