"""The customer portal: the case list and page, replies, escalation, tenancy, CSRF.

Through HTTP as a customer contact of cust-1 (``login_as``); support works the case
through the API. No response of the contact's session may carry an internal note,
the hand-off summary or an engineer's name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from caseapi.auth.principal import Role
from caseapi.cases.service import CaseService
from caseapi.cases.ticker import CaseTicker
from caseapi.comments.schemas import MAX_BODY
from nms.clock import FakeClock
from tests.caseapi.auth_fixtures import authed_client
from tests.caseapi.conftest import Database
from tests.caseapi.lifecycle_fixtures import advance, ticker
from tests.caseapi.pdf_tools import pdf_text, require_poppler
from tests.caseapi.web.pages import Browser, login_as

INTERNAL_NOTE = "Internal-only: the customer's router is misconfigured, blame-free xq7"
HANDOFF_SUMMARY = "Handoff-summary-zz9 fibre splice suspected"
HANDOFF_DETAILS = "Handoff-details-kk4 tested OTDR from the POP"
ENGINEER = "zoe-backoffice"
PUBLIC_REPLY = "We are looking into it and will update you within the hour."
#: Texts that must never reach the customer's browser.
SECRETS = (INTERNAL_NOTE, HANDOFF_SUMMARY, HANDOFF_DETAILS, ENGINEER, "escalation_level")


class Recorded:
    """Every response body a contact's session received."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, str]] = []

    async def __call__(self, response: httpx.Response) -> None:
        await response.aread()
        self.bodies.append((str(response.request.url), response.text))

    def assert_clean(self) -> None:
        assert self.bodies
        for url, body in self.bodies:
            for secret in SECRETS:
                assert secret not in body, f"{secret!r} leaked in {url}"


@pytest.fixture
async def contact(app: FastAPI) -> AsyncIterator[tuple[Browser, Recorded]]:
    """A signed-in contact of cust-1 whose every response is recorded."""
    recorded = Recorded()
    async with login_as(app, role=Role.CUSTOMER, customer_id="cust-1") as browser:
        browser.client.event_hooks["response"].append(recorded)
        yield browser, recorded
    recorded.assert_clean()


async def worked_case(app: FastAPI) -> str:
    """A case of cust-1 with a public reply, an internal note, a hand-off and a commitment."""
    async with authed_client(app, role=Role.CUSTOMER, customer_id="cust-1") as acme:
        created = await acme.post(
            "/v1/cases",
            json={"type": "incident", "summary": "Link flapping at HQ", "ntu_id": "ntu-1"},
        )
        assert created.status_code == 201, created.text
    ref: str = created.json()["ref"]
    async with authed_client(app, role=Role.ENGINEER) as staff:
        for body in (
            {"body": PUBLIC_REPLY, "visibility": "public"},
            {"body": INTERNAL_NOTE, "visibility": "internal"},
        ):
            assert (await staff.post(f"/v1/cases/{ref}/comments", json=body)).status_code == 201
        handoff = await staff.post(
            f"/v1/cases/{ref}/handoff",
            json={
                "to_level": "L1",
                "assignee": ENGINEER,
                "summary": HANDOFF_SUMMARY,
                "details": HANDOFF_DETAILS,
            },
        )
        assert handoff.status_code == 200, handoff.text
        commitment = await staff.post(
            f"/v1/cases/{ref}/commitments",
            json={"kind": "next_update", "within_minutes": 60, "note": "next update by phone"},
        )
        assert commitment.status_code == 200, commitment.text
    return ref


async def test_the_case_list_groups_by_state_and_searches(
    app: FastAPI, contact: tuple[Browser, Recorded]
) -> None:
    browser, _ = contact
    ref = await worked_case(app)
    page = await browser.get("/portal")
    assert page.status_code == 200, page.text
    assert f'data-ref="{ref}"' in page.text
    assert 'data-test="case-group-open"' in page.text
    assert "Link flapping at HQ" in page.text and "ntu-1" in page.text
    found = await browser.get("/portal", params={"q": "flapping"})
    assert f'data-ref="{ref}"' in found.text
    # Customers search their public text only: the internal note's words find nothing.
    hidden = await browser.get("/portal", params={"q": "misconfigured"})
    assert hidden.status_code == 200 and f'data-ref="{ref}"' not in hidden.text
    closed = await browser.get("/portal", params={"state": "closed"})
    assert f'data-ref="{ref}"' not in closed.text and "No closed cases" in closed.text


async def test_the_case_page_shows_the_public_story_only(
    app: FastAPI, contact: tuple[Browser, Recorded]
) -> None:
    browser, _ = contact
    ref = await worked_case(app)
    page = await browser.get(f"/portal/cases/{ref}")
    assert page.status_code == 200, page.text
    text = page.text
    for hook in ('data-test="case-header"', 'data-test="case-status"', 'data-test="timeline"'):
        assert hook in text
    assert PUBLIC_REPLY in text
    assert 'data-test="commitment"' in text and "next update by phone" in text
    assert "Your reply" in text and "Send reply" in text and ">Escalate<" in text
    fragment = await browser.get(f"/portal/cases/{ref}/timeline")
    assert fragment.status_code == 200 and PUBLIC_REPLY in fragment.text
    # What the staff see has all of it (the texts are really there to leak).
    async with authed_client(app, role=Role.ENGINEER) as staff:
        timeline = (await staff.get(f"/v1/cases/{ref}/timeline")).text
        comments = (await staff.get(f"/v1/cases/{ref}/comments")).text
    assert HANDOFF_SUMMARY in timeline and INTERNAL_NOTE in comments


async def test_a_reply_is_a_public_comment_by_the_customer(
    app: FastAPI, contact: tuple[Browser, Recorded]
) -> None:
    browser, _ = contact
    ref = await worked_case(app)
    sent = await browser.post(f"/portal/cases/{ref}/reply", {"body": "Still down <b>here</b>"})
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/portal/cases/{ref}?done=reply"
    page = await browser.get(sent.headers["location"])
    assert "Your reply was sent." in page.text
    assert "Still down &lt;b&gt;here&lt;/b&gt;" in page.text
    async with authed_client(app, role=Role.ENGINEER) as staff:
        comments = (await staff.get(f"/v1/cases/{ref}/comments")).json()["data"]
    mine = [c for c in comments if c["body"] == "Still down <b>here</b>"]
    assert len(mine) == 1
    assert (mine[0]["visibility"], mine[0]["author_role"]) == ("public", "customer")


async def test_a_reply_over_the_size_limit_shows_the_error_and_keeps_the_text(
    app: FastAPI, contact: tuple[Browser, Recorded]
) -> None:
    browser, _ = contact
    ref = await worked_case(app)
    too_long = "x" * (MAX_BODY + 1)
    refused = await browser.post(f"/portal/cases/{ref}/reply", {"body": too_long})
    assert refused.status_code == 422
    assert "Your reply: String should have at most 20000 characters" in refused.text
    assert too_long in refused.text
    empty = await browser.post(f"/portal/cases/{ref}/reply", {"body": ""})
    assert empty.status_code == 422 and "Your reply:" in empty.text
    assert await _customer_comments(app, ref) == 0


async def test_forms_without_the_csrf_token_are_refused_and_change_nothing(
    app: FastAPI,
    contact: tuple[Browser, Recorded],
    clock: FakeClock,
    database: Database,
    service: CaseService,
) -> None:
    browser, _ = contact
    ref = await worked_case(app)
    await _advance_signed_in(browser, clock, ticker(database, clock, service), minutes=61)
    before = await service.get_case(ref)
    reply = await browser.post(f"/portal/cases/{ref}/reply", {"body": "hello"}, csrf=False)
    escalate = await browser.post(f"/portal/cases/{ref}/escalate", csrf=False)
    new = await browser.post("/portal/cases/new", {"type": "incident", "summary": "x"}, csrf=False)
    assert (reply.status_code, escalate.status_code, new.status_code) == (403, 403, 403)
    assert "out of date" in reply.text
    after = await service.get_case(ref)
    assert (after.version, after.escalation_level) == (before.version, before.escalation_level)
    assert await _customer_comments(app, ref) == 0
    listing = await browser.get("/portal")
    assert listing.text.count('data-test="case-row"') == 1


async def test_escalation_opens_only_once_a_commitment_was_missed(
    app: FastAPI,
    contact: tuple[Browser, Recorded],
    clock: FakeClock,
    database: Database,
    service: CaseService,
) -> None:
    browser, _ = contact
    ref = await worked_case(app)
    page = await browser.get(f"/portal/cases/{ref}")
    assert "You can escalate when a commitment was missed" in page.text
    assert "The next commitment is due" in page.text
    refused = await browser.post(f"/portal/cases/{ref}/escalate")
    assert refused.status_code == 409
    assert "no commitment has been missed" in refused.text
    assert (await service.get_case(ref)).escalation_level.value == "L1"

    # The promised update (60 min) passes unkept: the ticker marks it missed (and
    # raises the level itself, L1 -> L2).
    await _advance_signed_in(browser, clock, ticker(database, clock, service), minutes=61)
    page = await browser.get(f"/portal/cases/{ref}")
    assert "A promise on this case was missed" in page.text
    done = await browser.post(f"/portal/cases/{ref}/escalate")
    assert done.status_code == 303
    assert done.headers["location"] == f"/portal/cases/{ref}?done=escalated"
    assert (await service.get_case(ref)).escalation_level.value == "L3"
    landed = await browser.get(done.headers["location"])
    assert "Your escalation was recorded" in landed.text
    top = await browser.post(f"/portal/cases/{ref}/escalate")
    assert top.status_code == 409 and "highest level" in top.text


async def test_another_customers_case_is_the_same_404_as_a_missing_one(
    app: FastAPI, contact: tuple[Browser, Recorded]
) -> None:
    browser, _ = contact
    async with authed_client(app, role=Role.CUSTOMER, customer_id="cust-2") as other:
        created = await other.post(
            "/v1/cases", json={"type": "incident", "summary": "Other's outage", "ntu_id": "ntu-9"}
        )
    theirs = created.json()["ref"]
    missing = "CS-2026-999999"
    for suffix in ("", "/rfo", "/rfo?format=pdf", "/timeline"):
        their_page = await browser.get(f"/portal/cases/{theirs}{suffix}")
        missing_page = await browser.get(f"/portal/cases/{missing}{suffix}")
        assert (their_page.status_code, missing_page.status_code) == (404, 404), suffix
        assert their_page.text == missing_page.text
        assert "Other's outage" not in their_page.text and theirs not in their_page.text
    posted = await browser.post(f"/portal/cases/{theirs}/reply", {"body": "hi"})
    assert posted.status_code == 404
    missing_post = await browser.post(f"/portal/cases/{missing}/reply", {"body": "hi"})
    assert posted.text == missing_post.text
    escalated = await browser.post(f"/portal/cases/{theirs}/escalate")
    assert escalated.status_code == 404


async def test_staff_get_403_on_portal_pages(app: FastAPI) -> None:
    async with login_as(app, role=Role.ENGINEER) as engineer:
        for url in ("/portal", "/portal/cases/new", "/portal/ntus", "/portal/maintenance"):
            response = await engineer.get(url)
            assert response.status_code == 403, url
            assert "not for your role" in response.text
        posted = await engineer.post("/portal/cases/CS-1/reply", {"body": "x"})
        assert posted.status_code == 403


async def _customer_comments(app: FastAPI, ref: str) -> int:
    async with authed_client(app, role=Role.ENGINEER) as staff:
        comments = (await staff.get(f"/v1/cases/{ref}/comments")).json()["data"]
    return sum(1 for c in comments if c["author_role"] == "customer")


async def test_public_attachments_are_listed_and_downloaded_internal_ones_never(
    app: FastAPI, contact: tuple[Browser, Recorded]
) -> None:
    browser, _ = contact
    ref = await worked_case(app)
    async with authed_client(app, role=Role.ENGINEER) as staff:
        uploads = [
            await staff.post(
                f"/v1/cases/{ref}/attachments",
                files={"file": (name, data, "text/plain")},
                data={"visibility": visibility},
            )
            for name, data, visibility in (
                ("trace.txt", b"public trace", "public"),
                ("otdr-secret.txt", INTERNAL_NOTE.encode(), "internal"),
            )
        ]
        api = await staff.get(f"/v1/cases/{ref}/attachments/{uploads[0].json()['id']}")
    assert [u.status_code for u in uploads] == [201, 201], uploads[1].text
    public_id, internal_id = (u.json()["id"] for u in uploads)
    page = await browser.get(f"/portal/cases/{ref}")
    assert 'data-test="attachments"' in page.text and "trace.txt" in page.text
    assert "otdr-secret" not in page.text
    download = await browser.get(f"/portal/cases/{ref}/attachments/{public_id}")
    assert download.status_code == 200 and download.content == b"public trace"
    assert download.headers["content-disposition"] == api.headers["content-disposition"]
    hidden = await browser.get(f"/portal/cases/{ref}/attachments/{internal_id}")
    assert hidden.status_code == 404


async def test_no_response_of_a_whole_session_carries_internal_text(
    app: FastAPI, contact: tuple[Browser, Recorded], tmp_path: Path
) -> None:
    """List, case page, timeline fragment, RFO page and the PDF's text: the fixture
    checks every recorded body for the internal note, hand-off and engineer's name."""
    browser, recorded = contact
    ref = await worked_case(app)
    async with authed_client(app, role=Role.ENGINEER) as staff:
        solved = await staff.post(
            f"/v1/cases/{ref}/transitions",
            json={
                "to": "solved",
                "resolution_method": "remote_fix",
                "root_cause_category": "access_circuit",
                "resolution": "Port reset",
            },
        )
        assert solved.status_code == 200, solved.text
        rfo = {
            "root_cause_category": "access_circuit",
            "root_cause": "A flapping access port.",
            "corrective_actions": "Port reset.",
            "preventive_not_applicable": "one-off hardware fault",
        }
        assert (await staff.put(f"/v1/cases/{ref}/rfo", json=rfo)).status_code == 200
        assert (await staff.post(f"/v1/cases/{ref}/rfo/publish")).status_code == 200
    for url in (
        "/portal",
        "/portal?q=flapping",
        f"/portal/cases/{ref}",
        f"/portal/cases/{ref}/timeline",
        f"/portal/cases/{ref}/rfo",
    ):
        assert (await browser.get(url)).status_code == 200, url
    page = recorded.bodies[2][1]
    assert 'data-test="rfo"' in page and "A flapping access port." in page
    assert 'data-test="monitoring-window"' in page and "Port reset" in page
    pdf = await browser.get(f"/portal/cases/{ref}/rfo", params={"format": "pdf"})
    assert pdf.headers["content-type"] == "application/pdf"
    require_poppler()
    text = pdf_text(pdf.content, tmp_path)
    assert "A flapping access port." in text
    for secret in SECRETS:
        assert secret not in text


async def _advance_signed_in(
    browser: Browser, clock: FakeClock, case_ticker: CaseTicker, *, minutes: int
) -> None:
    """Let ``minutes`` pass with the ticker, the contact looking at the portal every
    20 minutes (an idle session ends after 30)."""
    while minutes > 0:
        step = min(minutes, 20)
        await advance(clock, case_ticker, timedelta(minutes=step))
        assert (await browser.get("/portal")).status_code == 200
        minutes -= step
