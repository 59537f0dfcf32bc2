"""The case page and its actions: what it shows, what the actions store, refusals."""

from __future__ import annotations

import re
from datetime import UTC, timedelta

from fastapi import FastAPI

from caseapi.auth.principal import Role
from caseapi.cases.enums import CasePriority, CaseStatus
from caseapi.cases.service import CaseService
from caseapi.comments.schemas import MAX_BODY
from nms.clock import FakeClock
from tests.caseapi.lifecycle_fixtures import ENGINEER
from tests.caseapi.web.pages import login_as
from tests.caseapi.web.workspace_fixtures import open_case


def entries(html: str) -> list[str]:
    """The opening tags of the timeline's entries."""
    return re.findall(r'<li data-test="timeline-entry"[^>]*>', html)


async def test_the_page_shows_the_case_and_marks_internal_notes(
    app: FastAPI, service: CaseService
) -> None:
    ref = await open_case(service, summary="Fibre cut", priority=CasePriority.P1)
    async with login_as(app, role=Role.ENGINEER, name="eve") as engineer:
        public = await engineer.post(
            f"/cases/{ref}/comment", {"body": "We are on it.", "visibility": "public"}
        )
        internal = await engineer.post(
            f"/cases/{ref}/comment", {"body": "Depot says cable cut.", "visibility": "internal"}
        )
        page = await engineer.get(f"/cases/{ref}")
    assert (public.status_code, internal.status_code) == (303, 303)
    assert public.headers["location"] == f"/cases/{ref}#timeline"
    html = page.text
    assert page.status_code == 200
    assert 'data-test="case-header"' in html and ref in html
    assert re.search(r'data-test="case-status">new<', html)
    assert "Fibre cut" in html and "cust-1" in html and "svc-1" in html
    comments = [tag for tag in entries(html) if 'data-kind="comment_added"' in tag]
    assert len(comments) == 2
    assert 'class="internal"' not in comments[0] and 'class="internal"' in comments[1]
    note = html[html.index("Depot says cable cut.") - 600 : html.index("Depot says cable cut.")]
    assert "Internal note" in note
    assert "Post public reply" in html and "Add internal note" in html
    assert 'data-test="commitment-form"' in html and "Set commitment" in html
    assert 'data-test="ntu-state">up<' in html
    assert "Take</button>" in html
    stored = await app.state.comment_service.list_comments(
        principal=engineer.session.principal, ref=ref
    )
    assert [str(v.comment.visibility) for v in stored] == ["public", "internal"]


async def test_take_assign_and_transitions_change_the_stored_case(
    app: FastAPI, service: CaseService
) -> None:
    ref = await open_case(service)
    async with login_as(app, role=Role.ENGINEER, name="eve") as engineer:
        assert (await engineer.post(f"/cases/{ref}/take")).status_code == 303
        after_take = await service.get_case(ref)
        waiting = await engineer.post(f"/cases/{ref}/transition", {"to": "waiting_customer"})
        after_wait = await service.get_case(ref)
        page = await engineer.get(f"/cases/{ref}")
        solved = await engineer.post(
            f"/cases/{ref}/transition",
            {
                "to": "solved",
                "resolution_method": "remote",
                "root_cause_category": "hardware",
                "resolution": "Swapped the NTU",
            },
        )
        solved_page = await engineer.get(f"/cases/{ref}")
    assert after_take.assignee == "eve@example.net" and after_take.status is CaseStatus.IN_PROGRESS
    assert waiting.status_code == 303 and after_wait.status is CaseStatus.WAITING_CUSTOMER
    # Only what the lifecycle allows from waiting_customer is offered.
    offered = set(re.findall(r'data-transition="([a-z_]+)"', page.text))
    assert offered == {"in_progress", "waiting_supplier"}
    assert solved.status_code == 303
    assert (await service.get_case(ref)).status is CaseStatus.SOLVED
    assert 'data-test="monitoring-window"' in solved_page.text
    assert 'data-transition="closed"' not in solved_page.text  # the window still runs


async def test_a_transition_not_allowed_is_not_offered_and_refused_when_posted(
    app: FastAPI, service: CaseService
) -> None:
    ref = await open_case(service)
    async with login_as(app, role=Role.ENGINEER) as engineer:
        page = await engineer.get(f"/cases/{ref}")
        refused = await engineer.post(f"/cases/{ref}/transition", {"to": "closed"})
        unsolved = await engineer.post(f"/cases/{ref}/transition", {"to": "solved"})
    assert 'data-transition="closed"' not in page.text
    assert refused.status_code == 409
    assert 'role="alert"' in refused.text and "cannot go from new to closed" in refused.text
    assert unsolved.status_code == 422 and "resolution_method" in unsolved.text
    assert "Traceback" not in refused.text
    assert (await service.get_case(ref)).status is CaseStatus.NEW


async def test_a_form_without_the_csrf_token_changes_nothing(
    app: FastAPI, service: CaseService
) -> None:
    ref = await open_case(service)
    async with login_as(app, role=Role.ENGINEER) as engineer:
        take = await engineer.post(f"/cases/{ref}/take", csrf=False)
        note = await engineer.post(
            f"/cases/{ref}/comment", {"body": "x", "visibility": "internal"}, csrf=False
        )
    assert (take.status_code, note.status_code) == (403, 403)
    case = await service.get_case(ref)
    assert case.assignee is None and case.version == 1


async def test_a_reply_over_the_size_limit_is_shown_and_kept(
    app: FastAPI, service: CaseService
) -> None:
    ref = await open_case(service)
    body = "long " * (MAX_BODY // 5) + "end"
    async with login_as(app, role=Role.ENGINEER) as engineer:
        response = await engineer.post(
            f"/cases/{ref}/comment", {"body": body, "visibility": "public"}
        )
        stored = await app.state.comment_service.list_comments(
            principal=engineer.session.principal, ref=ref
        )
    assert response.status_code == 422
    assert 'role="alert"' in response.text and "body" in response.text
    assert "at most 20000 characters" in response.text
    assert "long long long" in response.text and "end</textarea>" in response.text
    assert stored == []


async def test_a_commitment_is_read_in_the_readers_zone(
    app: FastAPI, service: CaseService, clock: FakeClock
) -> None:
    ref = await open_case(service)
    now = clock.now()
    local = (now + timedelta(hours=3)).astimezone(UTC).replace(tzinfo=None) + timedelta(hours=1)
    async with login_as(app, role=Role.ENGINEER, timezone="Europe/Rome") as engineer:
        done = await engineer.post(
            f"/cases/{ref}/commitment",
            {
                "description": "Call back",
                "due": local.strftime("%Y-%m-%dT%H:%M"),
                "kind": "callback",
            },
        )
        past = await engineer.post(
            f"/cases/{ref}/commitment", {"description": "Too late", "due": "2020-01-01T10:00"}
        )
    assert done.status_code == 303, done.text
    [commitment] = await service.get_commitments(await service.get_case(ref))
    # Rome is UTC+1 in March: the local time typed is one hour ahead of UTC.
    assert commitment.due_at == (now + timedelta(hours=3)).replace(second=0, microsecond=0)
    assert commitment.note == "Call back"
    assert past.status_code == 422 and "in the future" in past.text
    assert 'value="Too late"' in past.text


async def test_the_rfo_is_drafted_published_and_downloaded(
    app: FastAPI, service: CaseService
) -> None:
    ref = await open_case(service)
    async with login_as(app, role=Role.ENGINEER) as engineer:
        working = await engineer.get(f"/cases/{ref}")
        await engineer.post(
            f"/cases/{ref}/transition",
            {"to": "solved", "resolution_method": "remote", "root_cause_category": "hardware"},
        )
        incomplete = await engineer.post(f"/cases/{ref}/rfo/publish")
        saved = await engineer.post(
            f"/cases/{ref}/rfo",
            {
                "root_cause_category": "hardware",
                "root_cause": "A failed power supply",
                "corrective_actions": "Replaced it",
                "preventive_actions": "",
                "preventive_not_applicable": "A one-off fault",
            },
        )
        published = await engineer.post(f"/cases/{ref}/rfo/publish")
        page = await engineer.get(f"/cases/{ref}")
        pdf = await engineer.get(f"/cases/{ref}/rfo.pdf", params={"version": 1})
    assert 'data-test="rfo-editor"' not in working.text  # written once restored
    assert incomplete.status_code == 409 and "cannot be published without" in incomplete.text
    assert (saved.status_code, published.status_code) == (303, 303)
    assert 'data-test="rfo-editor"' in page.text and "Version 1 · published" in page.text
    assert f'href="/cases/{ref}/rfo.pdf?version=1"' in page.text
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


async def test_publish_keeps_what_was_typed_and_an_unchanged_repost_changes_nothing(
    app: FastAPI, service: CaseService
) -> None:
    ref = await open_case(service)
    fields = {
        "root_cause_category": "hardware",
        "root_cause": "A failed power supply",
        "corrective_actions": "Replaced it",
        "preventive_actions": "",
        "preventive_not_applicable": "A one-off fault",
    }
    async with login_as(app, role=Role.ENGINEER) as engineer:
        await engineer.post(
            f"/cases/{ref}/transition",
            {"to": "solved", "resolution_method": "remote", "root_cause_category": "hardware"},
        )
        # Typed, never saved, then "Publish RFO": the typed text is what is published.
        published = await engineer.post(f"/cases/{ref}/rfo/publish", fields)
        again = await engineer.post(f"/cases/{ref}/rfo/publish", fields)
        # A refusal keeps what was typed in the draft.
        edited = await engineer.post(
            f"/cases/{ref}/rfo/publish",
            {**fields, "root_cause": "A failed fan", "corrective_actions": ""},
        )
        page = await engineer.get(f"/cases/{ref}")
    assert published.status_code == 303, published.text
    assert again.status_code == 409  # already published: no second version from nothing
    assert edited.status_code == 409 and "cannot be published without" in edited.text
    # One published version; the refused correction is version 2's draft, as typed.
    assert "<li>Version 1, " in page.text and "<li>Version 2, " not in page.text
    assert "Version 2 · draft" in page.text and "A failed fan" in page.text
    rfo = await app.state.rfo_service.get_rfo(principal=ENGINEER, ref=ref, version=1)
    assert rfo.row is not None and rfo.row.root_cause == "A failed power supply"


async def test_another_case_is_a_404_and_customers_get_403(
    app: FastAPI, service: CaseService
) -> None:
    ref = await open_case(service)
    async with login_as(app, role=Role.ENGINEER) as engineer:
        missing = await engineer.get("/cases/CS-2026-999999")
    async with login_as(app, role=Role.CUSTOMER, customer_id="cust-1") as customer:
        page = await customer.get(f"/cases/{ref}")
        take = await customer.post(f"/cases/{ref}/take")
    assert missing.status_code == 404
    assert (page.status_code, take.status_code) == (403, 403)
    assert (await service.get_case(ref)).assignee is None


async def test_canned_replies_fill_the_composer(app: FastAPI, service: CaseService) -> None:
    ref = await open_case(service, summary="Fibre cut")
    [reply, *_] = await app.state.reply_service.list_replies()
    async with login_as(app, role=Role.ENGINEER) as engineer:
        page = await engineer.get(f"/cases/{ref}")
        filled = await engineer.get(f"/cases/{ref}", params={"reply": reply.id})
        text = await engineer.get(f"/cases/{ref}/replies/{reply.id}")
    assert f'<option value="{reply.id}">' in page.text and ">Insert</button>" in page.text
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    assert "${" not in text.text
    composer = filled.text.split('id="composer-body"', 1)[1].split("</textarea>", 1)[0]
    assert text.text.splitlines()[0] in composer


async def test_escalate_cancel_and_forward_go_through_the_service(
    app: FastAPI, service: CaseService
) -> None:
    ref = await open_case(service)
    async with login_as(app, role=Role.ENGINEER) as engineer:
        escalated = await engineer.post(f"/cases/{ref}/escalate")
        unknown_team = await engineer.post(
            f"/cases/{ref}/forward",
            {"team": "nope", "summary": "Line flaps", "details": "Since 9:00", "tests_done": ""},
        )
        no_reason = await engineer.post(f"/cases/{ref}/cancel", {"reason": " "})
        cancelled = await engineer.post(f"/cases/{ref}/cancel", {"reason": "Duplicate"})
        page = await engineer.get(f"/cases/{ref}")
    assert escalated.status_code == 303
    assert unknown_team.status_code == 422 and "no team &#39;nope&#39;" in unknown_team.text
    assert 'value="Line flaps"' in unknown_team.text
    assert no_reason.status_code == 422
    assert cancelled.status_code == 303
    case = await service.get_case(ref)
    assert case.escalation_level.value == "L2" and case.status is CaseStatus.CANCELLED
    assert "Take</button>" not in page.text and "data-transition" not in page.text


async def test_a_hand_off_carries_its_structured_summary(
    app: FastAPI, service: CaseService
) -> None:
    ref = await open_case(service)
    async with login_as(app, role=Role.ENGINEER) as engineer:
        done = await engineer.post(
            f"/cases/{ref}/handoff",
            {
                "to_level": "L2",
                "team": "",
                "assignee": "",
                "summary": "Line flaps every hour",
                "details": "CRC errors on the WAN port",
                "tests_done": "loop test\nswapped cable",
                "open_questions": "",
                "hypotheses": "bad SFP",
            },
        )
        page = await engineer.get(f"/cases/{ref}")
    assert done.status_code == 303
    assert (await service.get_case(ref)).escalation_level.value == "L2"
    [handed] = [e for e in await service.get_timeline(ref) if e.kind.value == "handed_off"]
    assert handed.data["summary"]["tests_done"] == ["loop test", "swapped cable"]
    assert handed.data["summary"]["hypotheses"] == ["bad SFP"]
    assert "Line flaps every hour" in page.text
