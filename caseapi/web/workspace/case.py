"""The case page (``/cases/{ref}``) and its actions (``POST /cases/{ref}/<action>``).

Each action calls what its ``/v1`` route calls, with the signed-in person as the
caller: the same request model checks the form (``TransitionRequest``,
``CommentCreate``, ...), the same event goes to ``CaseService.act``. A refusal (a
transition the lifecycle does not allow, an incomplete RFO, a comment too long)
re-renders the page with the message in an alert, the status the API would give and
what was typed kept; success is a 303 back to the page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from caseapi.cases.actions import is_customer_visible
from caseapi.cases.enums import (
    WORKING_STATUSES,
    CaseEventKind,
    CaseStatus,
    CommitmentKind,
    EscalationLevel,
    RootCauseCategory,
)
from caseapi.cases.models import Case
from caseapi.cases.queues import next_deadline
from caseapi.cases.routes import commitment_event, transition_event
from caseapi.cases.schemas import (
    AssignRequest,
    CancelRequest,
    CommitmentCreate,
    ForwardRequest,
    HandOffRequest,
    ReasonRequest,
    TransitionRequest,
)
from caseapi.cases.snapshot import Assign, Cancel, Escalate, HandOff, Reopen
from caseapi.comments.models import Comment, Visibility
from caseapi.comments.schemas import CommentCreate
from caseapi.core.database import session_scope
from caseapi.core.deps import RowId
from caseapi.ntus import repository as ntu_repository
from caseapi.rfo.errors import RfoNotFoundError, RfoRuleError
from caseapi.rfo.facts import probe_figures
from caseapi.rfo.pdf import PDF_MEDIA_TYPE, published_pdf
from caseapi.rfo.schemas import RfoUpdate, to_public
from caseapi.rfo.service import EDITABLE_FIELDS
from caseapi.teams.service import forward_target, list_teams
from caseapi.web.deps import StaffForm, StaffPage
from caseapi.web.render import render
from caseapi.web.session import WebSession
from caseapi.web.workspace.common import (
    cases,
    comments,
    drop_empty,
    form_of,
    is_form_error,
    local_to_utc,
    refusal,
    replies,
    rfos,
)

router = APIRouter(include_in_schema=False)

#: What each status-changing button says (the lifecycle decides which are shown).
TRANSITION_LABELS: Final = {
    CaseStatus.IN_PROGRESS: "Back to work",
    CaseStatus.WAITING_CUSTOMER: "Wait on customer",
    CaseStatus.WAITING_SUPPLIER: "Wait on supplier",
    CaseStatus.SOLVED: "Solve",
    CaseStatus.CLOSED: "Close",
    CaseStatus.CANCELLED: "Cancel case",
    CaseStatus.MERGED: "Merge",
}


async def _ntu(request: Request, case: Case) -> dict[str, Any] | None:
    if case.ntu_id is None:
        return None
    async with session_scope(request.app.state.sessionmaker) as session:
        row = await ntu_repository.get_ntu(session, ntu_id=case.ntu_id)
    if row is None:
        return {"id": case.ntu_id, "status": "unknown", "state": None, "probe": None}
    return {
        "id": row.ntu.id,
        "status": row.status,
        "state": row.state,
        "probe": probe_figures(row.state),
    }


async def _rfo(request: Request, web: WebSession, case: Case) -> dict[str, Any] | None:
    # The RFO is written once the service is restored (solved and after); its facts
    # take a few queries, which a case still being worked does not pay for.
    if case.status not in (CaseStatus.SOLVED, CaseStatus.RFO_PENDING, CaseStatus.CLOSED):
        return None
    try:
        view = await rfos(request).get_rfo(principal=web.principal, ref=case.ref, version=None)
        versions = await rfos(request).list_versions(principal=web.principal, ref=case.ref)
    except (RfoNotFoundError, RfoRuleError):
        return None
    return {
        "public": to_public(view),
        "published": [row for row in versions if row.published_at is not None],
    }


async def case_context(request: Request, web: WebSession, ref: str) -> dict[str, Any]:
    """Everything the case page shows (the same reads as the API's case routes)."""
    service = cases(request)
    principal = web.principal
    view = await service.case_view(principal, ref)
    case, commitments, timeline = view.case, view.commitments, view.events
    bodies: dict[object, Comment] = {comment.id: comment for comment in view.comments}
    now = service.clock.now()
    pending = [c for c in commitments if c.met_at is None]
    entries = [
        {
            "event": event,
            "internal": not is_customer_visible(event),
            "comment": bodies.get(event.data.get("comment_id"))
            if event.kind is CaseEventKind.COMMENT_ADDED
            else None,
        }
        for event in timeline
    ]
    working = case.status in WORKING_STATUSES
    return {
        "case": case,
        "now": now,
        "teams": await list_teams(request.app.state.sessionmaker) if working else [],
        "commitments": commitments,
        "next_commitment": min(pending, key=lambda c: c.due_at, default=None),
        "deadline": next_deadline(case, commitments),
        "parent": view.parent,
        "linked": view.linked,
        "entries": entries,
        "transitions": [
            (status, TRANSITION_LABELS.get(status, status.value))
            for status in await service.allowed_transitions(case)
        ],
        "ntu": await _ntu(request, case),
        "rfo": await _rfo(request, web, case),
        "replies": await replies(request).list_replies(),
        "commitment_kinds": list(CommitmentKind),
        "root_causes": list(RootCauseCategory),
        "levels": list(EscalationLevel),
        "rfo_fields": EDITABLE_FIELDS,
        "working": working,
        "error": None,
        "form": {},
        "failed": None,
        "composer": "",
    }


async def render_case(
    request: Request,
    web: WebSession,
    ref: str,
    *,
    error: str | None = None,
    failed: str | None = None,
    form: dict[str, str] | None = None,
    composer: str = "",
    status: int = 200,
) -> HTMLResponse:
    context = await case_context(request, web, ref)
    form = form or {}
    context.update(error=error, failed=failed, form=form, composer=form.get("body", composer))
    return render(request, "workspace/case.html", context, status_code=status)


@router.get("/cases/{ref}", response_class=HTMLResponse)
async def case_page(
    request: Request,
    web: StaffPage,
    ref: str,
    reply: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> HTMLResponse:
    """The case: header, clocks, NTU, timeline, composer, actions, RFO editor.

    ``?reply=<id>``: the composer starts with that canned reply filled in (the
    "Insert" button without JavaScript).
    """
    composer = ""
    if reply is not None:
        preview = await replies(request).preview(principal=web.principal, ref=ref, reply_id=reply)
        composer = preview.body
    return await render_case(request, web, ref, composer=composer)


@router.get("/cases/{ref}/replies/{reply_id}", response_class=PlainTextResponse)
async def reply_preview(request: Request, web: StaffPage, ref: str, reply_id: RowId) -> Response:
    """A canned reply filled with the case's fields, as text (the composer's script)."""
    preview = await replies(request).preview(principal=web.principal, ref=ref, reply_id=reply_id)
    return PlainTextResponse(preview.body)


@router.get("/cases/{ref}/rfo.pdf")
async def rfo_pdf(
    request: Request,
    web: StaffPage,
    ref: str,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Response:
    """A published RFO version as PDF (what ``GET /v1/cases/{ref}/rfo?format=pdf`` gives)."""
    published = await rfos(request).get_published(principal=web.principal, ref=ref, version=version)
    name, data = await asyncio.to_thread(published_pdf, published)
    return Response(
        data,
        media_type=PDF_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


Work = Callable[[dict[str, str]], Awaitable[object]]


async def _acting(
    request: Request, web: WebSession, ref: str, action: str, work: Work, *, anchor: str = ""
) -> Response:
    """Run ``work`` with the posted form; 303 to the page, or the page with the refusal."""
    form = await form_of(request)
    try:
        await work(form)
    except Exception as exc:
        if not is_form_error(exc):
            raise
        status, message = refusal(exc)
        return await render_case(
            request, web, ref, error=message, failed=action, form=form, status=status
        )
    return RedirectResponse(f"/cases/{ref}{'#' + anchor if anchor else ''}", status_code=303)


def _lines(value: str | None) -> list[str]:
    return [line.strip() for line in (value or "").splitlines() if line.strip()]


@router.post("/cases/{ref}/take")
async def take(request: Request, web: StaffForm, ref: str) -> Response:
    """Assign the case to yourself (``POST /v1/cases/{ref}/take``)."""
    principal = web.principal

    async def work(form: dict[str, str]) -> object:
        event = Assign(assignee=principal.name, actor=principal.actor)
        return await cases(request).act(principal, ref, lambda _: event)

    return await _acting(request, web, ref, "take", work)


@router.post("/cases/{ref}/assign")
async def assign(request: Request, web: StaffForm, ref: str) -> Response:
    """Assign the case to someone, or back to the queue when left empty."""
    principal = web.principal

    async def work(form: dict[str, str]) -> object:
        body = AssignRequest.model_validate({"assignee": form.get("assignee", "").strip() or None})
        event = Assign(assignee=body.assignee, actor=principal.actor)
        return await cases(request).act(principal, ref, lambda _: event)

    return await _acting(request, web, ref, "assign", work)


@router.post("/cases/{ref}/forward")
async def forward(request: Request, web: StaffForm, ref: str) -> Response:
    """Hand the case to a team and / or a member with the structured summary."""
    principal = web.principal

    async def work(form: dict[str, str]) -> object:
        body = ForwardRequest.model_validate(
            {
                **drop_empty(
                    {
                        "team": form.get("team", "").strip(),
                        "assignee": form.get("assignee", "").strip(),
                        "summary": form.get("summary", ""),
                        "details": form.get("details", ""),
                    }
                ),
                "tests_done": _lines(form.get("tests_done")),
                "open_questions": _lines(form.get("open_questions")),
                "hypotheses": _lines(form.get("hypotheses")),
            }
        )
        target = await forward_target(
            request.app.state.sessionmaker, team=body.team, assignee=body.assignee
        )
        event = target.handoff(actor=principal.actor, summary=body.summary_fields())
        return await cases(request).act(principal, ref, event)

    return await _acting(request, web, ref, "forward", work)


@router.post("/cases/{ref}/handoff")
async def hand_off(request: Request, web: StaffForm, ref: str) -> Response:
    """Hand the case to a specialist level with the structured summary."""
    principal = web.principal

    async def work(form: dict[str, str]) -> object:
        body = HandOffRequest.model_validate(
            {
                **drop_empty(
                    {
                        "to_level": form.get("to_level", ""),
                        "assignee": form.get("assignee", "").strip(),
                        "summary": form.get("summary", ""),
                        "details": form.get("details", ""),
                    }
                ),
                "tests_done": _lines(form.get("tests_done")),
                "open_questions": _lines(form.get("open_questions")),
                "hypotheses": _lines(form.get("hypotheses")),
            }
        )
        event = HandOff(
            actor=principal.actor,
            to_level=body.to_level,
            assignee=body.assignee,
            summary=body.summary_fields(),
        )
        return await cases(request).act(principal, ref, lambda _: event)

    return await _acting(request, web, ref, "handoff", work)


@router.post("/cases/{ref}/commitment")
async def commitment(request: Request, web: StaffForm, ref: str) -> Response:
    """Promise something by a time (``due`` is read in the reader's time zone)."""
    principal = web.principal

    async def work(form: dict[str, str]) -> object:
        due = form.get("due", "")
        if not due.strip():
            raise ValueError("due: give the date and time the commitment is due")
        body = CommitmentCreate.model_validate(
            {
                "kind": form.get("kind") or CommitmentKind.NEXT_UPDATE.value,
                "due_at": local_to_utc(due, web.timezone),
                "note": form.get("description", ""),
            }
        )
        service = cases(request)
        event = commitment_event(body, principal, now=service.clock.now())
        return await service.act(principal, ref, lambda _: event)

    return await _acting(request, web, ref, "commitment", work, anchor="commitments")


@router.post("/cases/{ref}/transition")
async def transition(request: Request, web: StaffForm, ref: str) -> Response:
    """Move the case to another status (only what the lifecycle allows)."""
    principal = web.principal

    async def work(form: dict[str, str]) -> object:
        fields = ("to", "reason", "resolution_method", "root_cause_category", "resolution")
        body = TransitionRequest.model_validate(
            drop_empty({name: form.get(name, "") for name in fields})
        )
        event = transition_event(body, principal)
        return await cases(request).act(principal, ref, lambda _: event)

    return await _acting(request, web, ref, "transition", work)


@router.post("/cases/{ref}/cancel")
async def cancel(request: Request, web: StaffForm, ref: str) -> Response:
    """Withdraw the case, with a reason."""
    principal = web.principal

    async def work(form: dict[str, str]) -> object:
        body = CancelRequest.model_validate({"reason": form.get("reason", "")})
        event = Cancel(actor=principal.actor, reason=body.reason, by_customer=False)
        return await cases(request).act(principal, ref, lambda _: event)

    return await _acting(request, web, ref, "cancel", work)


@router.post("/cases/{ref}/reopen")
async def reopen(request: Request, web: StaffForm, ref: str) -> Response:
    """Put a solved case back to work while its monitoring window runs."""
    principal = web.principal

    async def work(form: dict[str, str]) -> object:
        body = ReasonRequest.model_validate({"reason": form.get("reason", "")})
        event = Reopen(actor=principal.actor, reason=body.reason)
        return await cases(request).act(principal, ref, lambda _: event)

    return await _acting(request, web, ref, "reopen", work)


@router.post("/cases/{ref}/escalate")
async def escalate(request: Request, web: StaffForm, ref: str) -> Response:
    """Raise the escalation level one step."""
    principal = web.principal

    async def work(form: dict[str, str]) -> object:
        body = ReasonRequest.model_validate({"reason": form.get("reason", "")})
        event = Escalate(actor=principal.actor, by_customer=False, reason=body.reason)
        return await cases(request).act(principal, ref, lambda _: event)

    return await _acting(request, web, ref, "escalate", work)


@router.post("/cases/{ref}/comment")
async def comment(request: Request, web: StaffForm, ref: str) -> Response:
    """A public reply or an internal note (the button pressed says which)."""
    principal = web.principal

    async def work(form: dict[str, str]) -> object:
        body = CommentCreate.model_validate(
            {"body": form.get("body", ""), "visibility": form.get("visibility", "")}
        )
        return await comments(request).add_comment(
            principal=principal, ref=ref, body=body.body, visibility=Visibility(body.visibility)
        )

    return await _acting(request, web, ref, "comment", work, anchor="timeline")


@router.post("/cases/{ref}/rfo")
async def save_rfo(request: Request, web: StaffForm, ref: str) -> Response:
    """Save the RFO draft (a published version starts a new draft)."""
    principal = web.principal

    async def work(form: dict[str, str]) -> object:
        changes = _rfo_changes(form)
        return await rfos(request).update_draft(principal=principal, ref=ref, changes=changes)

    return await _acting(request, web, ref, "rfo", work, anchor="rfo")


def _rfo_changes(form: dict[str, str]) -> dict[str, Any]:
    """The editor's fields as the API's ``PUT .../rfo`` body takes them (validated)."""
    body = RfoUpdate.model_validate(
        {name: form[name].strip() or None for name in EDITABLE_FIELDS if name in form}
    )
    changes = body.model_dump(exclude_unset=True)
    if changes.get("root_cause_category") is not None:
        changes["root_cause_category"] = str(changes["root_cause_category"])
    return changes


@router.post("/cases/{ref}/rfo/publish")
async def publish_rfo(request: Request, web: StaffForm, ref: str) -> Response:
    """Publish the RFO draft: it freezes and the customer can read it."""
    principal = web.principal

    async def work(form: dict[str, str]) -> object:
        # "Publish RFO" posts the editor's form: what was typed since the last "Save
        # draft" is saved first, so publishing never drops it (and a refusal keeps it
        # in the draft). Fields equal to the stored version change nothing, so a
        # published RFO posted again unchanged does not start a new version.
        service = rfos(request)
        current = to_public(await service.get_rfo(principal=principal, ref=ref, version=None))
        stored = current.model_dump(mode="json")
        edited = {
            name: value for name, value in _rfo_changes(form).items() if stored.get(name) != value
        }
        if edited:
            await service.update_draft(principal=principal, ref=ref, changes=edited)
        return await service.publish(principal=principal, ref=ref)

    return await _acting(request, web, ref, "rfo", work, anchor="rfo")
