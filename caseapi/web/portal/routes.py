"""The customer portal: a customer contact's cases, replies, escalations, RFOs,
maintenance windows and NTUs.

Every page calls the service the ``/v1`` route of the same action calls, with the
session's customer principal, so the services' tenancy applies: another customer's
case or RFO is the same 404 page as one that does not exist. What a page shows of a
case is the API's customer view (``CaseCustomerView``, the customer timeline, the
published RFO); the page never filters internal data itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Final
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from caseapi.attachments.routes import download_response
from caseapi.attachments.schemas import AttachmentPublic
from caseapi.auth.deps import RateLimiterDep, charge_customer
from caseapi.auth.errors import ContractRefusedError
from caseapi.auth.tenancy import own_customer
from caseapi.cases.enums import CasePriority, CaseSubject, CaseType
from caseapi.cases.errors import CaseRuleError, CaseValidationError
from caseapi.cases.repository import CaseFilters
from caseapi.cases.schemas import (
    CaseCreate,
    CaseCustomerView,
    CaseEventPublic,
    EscalationPublic,
)
from caseapi.cases.search import MAX_SEARCH_LENGTH, SearchSyntaxError, parse_search
from caseapi.cases.snapshot import Escalate
from caseapi.comments.errors import CommentRefusedError
from caseapi.comments.models import Visibility
from caseapi.comments.schemas import MAX_BODY, CommentCreate
from caseapi.core.deps import RowId, SessionDep
from caseapi.core.errors import NtuNotFoundError
from caseapi.core.localtime import zone_for
from caseapi.maintenance.enums import MaintenanceState
from caseapi.maintenance.routes import MAX_LIMIT as MAX_WINDOWS
from caseapi.maintenance.routes import to_public as maintenance_view
from caseapi.ntus import repository as ntu_repository
from caseapi.ntus.routes import MAX_PAGE_SIZE as MAX_NTUS
from caseapi.ntus.schemas import NtuPublic
from caseapi.ratelimit.service import Limit
from caseapi.rfo.errors import RfoNotFoundError
from caseapi.rfo.routes import pdf_response
from caseapi.rfo.schemas import RfoFormat, to_public
from caseapi.web import services
from caseapi.web.deps import CustomerForm, CustomerPage
from caseapi.web.errors import status_of
from caseapi.web.portal.views import (
    STATE_STATUSES,
    STATE_TITLES,
    CaseState,
    current_commitment,
    rfo_document,
    status_text,
    timeline_lines,
)
from caseapi.web.render import environment, render
from caseapi.web.session import WebSession

router = APIRouter(include_in_schema=False)

#: Cases a group shows on the overview (each group's own page pages through all).
OVERVIEW_ROWS: Final = 25
GROUP_ROWS: Final = 50
#: What a redirect after a successful form says on the page it lands on.
DONE_TEXT: Final = {
    "reply": "Your reply was sent.",
    "escalated": "Your escalation was recorded: the case goes to the next support level.",
    "created": "Your case was opened.",
}

# Named for the area: the environment is shared with the other areas.
environment().filters["portal_status"] = status_text


def _case_url(ref: str, done: str | None = None) -> str:
    url = f"/portal/cases/{quote(ref, safe='')}"
    return f"{url}?done={done}" if done else url


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _validation_messages(exc: ValidationError, labels: Mapping[str, str]) -> dict[str, str]:
    """Pydantic's errors by form field, each prefixed with the field's label."""
    messages: dict[str, str] = {}
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "form"
        messages.setdefault(name, f"{labels.get(name, name)}: {error['msg']}")
    return messages


# -- the case list -----------------------------------------------------------------


@router.get("/portal")
async def portal_home(
    request: Request,
    web: CustomerPage,
    state: Annotated[CaseState | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=MAX_SEARCH_LENGTH)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    """The customer's cases by state (all three groups, or one with paging), searchable."""
    service = services.cases(request)
    query = (q or "").strip()
    error = None
    search = None
    if query:
        try:
            search = parse_search(query)
        except SearchSyntaxError as exc:
            error = f"Search: {exc}"
    groups: list[dict[str, Any]] = []
    if error is None:
        for group in (state,) if state else tuple(CaseState):
            filters = CaseFilters(
                statuses=STATE_STATUSES[group],
                customer_id=own_customer(web.principal, None, field="customer"),
                search=search,
            )
            page = await service.list_cases(
                filters=service.scope_filters(web.principal, filters),
                cursor=cursor if state else None,
                limit=GROUP_ROWS if state else OVERVIEW_ROWS,
            )
            groups.append(
                {
                    "state": group.value,
                    "title": STATE_TITLES[group],
                    "cases": [CaseCustomerView.from_case(case) for case in page.items],
                    "count": page.count,
                    "next_cursor": page.next_cursor,
                }
            )
    return render(
        request,
        "portal/cases.html",
        {
            "groups": groups,
            "state": state.value if state else "",
            "states": [(s.value, STATE_TITLES[s]) for s in CaseState],
            "q": query,
            "error": error,
            "flash": DONE_TEXT.get(done or ""),
        },
        status_code=422 if error else 200,
    )


# -- one case ----------------------------------------------------------------------


async def _case_context(request: Request, web: WebSession, ref: str) -> dict[str, Any]:
    """Everything the case page shows, from the services' customer views."""
    cases = services.cases(request)
    principal = web.principal
    detail = await cases.get_case_detail_for(principal, ref)
    case = detail.case
    view = CaseCustomerView.from_case(case, detail.commitments).model_copy(
        update={"parent": detail.parent_ref, "escalation": EscalationPublic.of(detail.escalation)}
    )
    events = await cases.get_timeline_for(principal, case.ref)
    timeline = [CaseEventPublic.from_event(event, for_customer=True) for event in events]
    outlook = await cases.customer_escalation(case)
    try:
        rfo = await services.rfos(request).get_rfo(principal=principal, ref=case.ref, version=None)
    except RfoNotFoundError:
        rfo = None
    attachments = await services.attachments(request).list_attachments(
        principal=principal, ref=case.ref
    )
    return {
        "case": view,
        "attachments": [AttachmentPublic.from_attachment(a) for a in attachments],
        "timeline": timeline_lines(timeline),
        "commitment": current_commitment(view.commitments),
        "escalation": outlook,
        "rfo": rfo_document(to_public(rfo), web.timezone) if rfo is not None else None,
        "reply_text": "",
        "reply_error": None,
        "escalate_error": None,
        "max_reply": MAX_BODY,
    }


async def _case_page(
    request: Request,
    web: WebSession,
    ref: str,
    *,
    status_code: int = 200,
    **changes: Any,
) -> HTMLResponse:
    context = await _case_context(request, web, ref)
    context.update(changes)
    return render(request, "portal/case.html", context, status_code=status_code)


@router.get("/portal/cases/new")
async def new_case_form(request: Request, web: CustomerPage, session: SessionDep) -> HTMLResponse:
    """The form to open a case on one of the customer's NTUs."""
    return await _new_case_page(request, web, session, values={}, errors={})


@router.get("/portal/cases/{ref}")
async def case_page(
    request: Request,
    web: CustomerPage,
    ref: str,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    """One case: status, commitment, public timeline, RFO, reply and escalation."""
    return await _case_page(request, web, ref, flash=DONE_TEXT.get(done or ""))


@router.get("/portal/cases/{ref}/timeline")
async def case_timeline_fragment(request: Request, web: CustomerPage, ref: str) -> HTMLResponse:
    """Only the public timeline (the page's script refreshes it with this)."""
    cases = services.cases(request)
    events = await cases.get_timeline_for(web.principal, ref)
    timeline = [CaseEventPublic.from_event(event, for_customer=True) for event in events]
    return render(request, "portal/_timeline.html", {"timeline": timeline_lines(timeline)})


@router.post("/portal/cases/{ref}/reply")
async def reply(request: Request, web: CustomerForm, ref: str, limiter: RateLimiterDep) -> Response:
    """A public comment by the customer (``POST /v1/cases/{ref}/comments``)."""
    text = _field(await request.form(), "body")
    try:
        comment = CommentCreate(body=text, visibility=Visibility.PUBLIC)
    except ValidationError as exc:
        message = _validation_messages(exc, {"body": "Your reply"}).get("body", str(exc))
        return await _case_page(
            request, web, ref, status_code=422, reply_text=text, reply_error=message
        )
    await charge_customer(limiter, Limit.COMMENTS_PER_CUSTOMER, web.principal)
    try:
        await services.comments(request).add_comment(
            principal=web.principal, ref=ref, body=comment.body, visibility=comment.visibility
        )
    except CommentRefusedError as exc:
        return await _case_page(
            request, web, ref, status_code=409, reply_text=text, reply_error=str(exc)
        )
    return RedirectResponse(_case_url(ref, "reply"), status_code=303)


@router.post("/portal/cases/{ref}/escalate")
async def escalate(request: Request, web: CustomerForm, ref: str) -> Response:
    """Escalate one level (``POST /v1/cases/{ref}/escalate``); refused unless a
    commitment was missed."""
    principal = web.principal
    event = Escalate(actor=principal.actor, by_customer=True, reason="")
    try:
        await services.cases(request).act(principal, ref, lambda _: event)
    except CaseRuleError as exc:
        return await _case_page(
            request, web, ref, status_code=exc.http_status, escalate_error=str(exc)
        )
    return RedirectResponse(_case_url(ref, "escalated"), status_code=303)


@router.get("/portal/cases/{ref}/rfo", response_model=None)
async def rfo_page(
    request: Request,
    web: CustomerPage,
    ref: str,
    format: Annotated[RfoFormat | None, Query()] = None,
) -> Response:
    """The published RFO as a page, or ``?format=pdf`` the API's PDF of it."""
    service = services.rfos(request)
    if format is RfoFormat.PDF:
        return await pdf_response(ref, web.principal, service, None)
    view = await service.get_rfo(principal=web.principal, ref=ref, version=None)
    return render(
        request,
        "portal/rfo.html",
        {"ref": view.case_ref, "rfo": rfo_document(to_public(view), web.timezone)},
    )


@router.get("/portal/cases/{ref}/attachments/{attachment_id}", response_model=None)
async def attachment_download(
    request: Request, web: CustomerPage, ref: str, attachment_id: RowId
) -> Response:
    """A public attachment of the case (``GET /v1/cases/{ref}/attachments/{id}``)."""
    download = await services.attachments(request).download(
        principal=web.principal, ref=ref, attachment_id=attachment_id
    )
    return download_response(download)


# -- a new case --------------------------------------------------------------------

_NEW_CASE_LABELS: Final = {
    "ntu_id": "Site / NTU",
    "type": "Type",
    "subject": "Request about",
    "summary": "Summary",
    "description": "Description",
    "suggested_priority": "Suggested priority",
    "requested_date": "Requested date",
    "customer_id": "Customer",
}


async def _new_case_page(
    request: Request,
    web: WebSession,
    session: SessionDep,
    *,
    values: Mapping[str, str],
    errors: Mapping[str, str],
    status_code: int = 200,
) -> HTMLResponse:
    rows = await ntu_repository.list_ntus(
        session,
        customer_id=own_customer(web.principal, None, field="customer"),
        status=None,
        after_id=None,
        limit=MAX_NTUS,
    )
    return render(
        request,
        "portal/new_case.html",
        {
            "ntus": [NtuPublic.from_row(row) for row in rows],
            "types": [(t.value, t.value.replace("_", " ").capitalize()) for t in CaseType],
            "subjects": [(s.value, s.value.replace("_", " ").capitalize()) for s in CaseSubject],
            "priorities": [p.value for p in CasePriority],
            "values": values,
            "errors": errors,
        },
        status_code=status_code,
    )


def _local_time(value: str, zone: str) -> datetime | str | None:
    """A ``datetime-local`` field in the reader's zone (text for pydantic to refuse)."""
    if not value:
        return None
    try:
        naive = datetime.fromisoformat(value)
    except ValueError:
        return value
    return naive.replace(tzinfo=zone_for(zone)) if naive.tzinfo is None else naive


@router.post("/portal/cases/new")
async def open_case(
    request: Request, web: CustomerForm, session: SessionDep, limiter: RateLimiterDep
) -> Response:
    """Open a reactive case (``POST /v1/cases`` by a customer)."""
    form = await request.form()
    values = {name: _field(form, name).strip() for name in _NEW_CASE_LABELS}
    values["description"] = _field(form, "description")
    fields: dict[str, Any] = {
        "type": values["type"],
        "summary": values["summary"],
        "description": values["description"] or None,
        "ntu_id": values["ntu_id"] or None,
        "subject": values["subject"] or None,
        "suggested_priority": values["suggested_priority"] or None,
        "requested_date": _local_time(values["requested_date"], web.timezone),
    }
    if fields["type"] == CaseType.INCIDENT.value:
        fields["subject"] = None  # the select keeps a value the form hides for incidents
    try:
        draft = CaseCreate.model_validate(fields)
    except ValidationError as exc:
        errors = _validation_messages(exc, _NEW_CASE_LABELS)
        return await _new_case_page(
            request, web, session, values=values, errors=errors, status_code=422
        )
    await charge_customer(limiter, Limit.CASE_CREATION_PER_CUSTOMER, web.principal)
    try:
        created = await services.cases(request).create_case(web.principal, draft)
    except CaseValidationError as exc:
        # The message names the rule's field (``requested_date: an engineer ...``).
        errors = {exc.field: f"{_NEW_CASE_LABELS.get(exc.field, exc.field)} - {exc}"}
        return await _new_case_page(
            request, web, session, values=values, errors=errors, status_code=422
        )
    except (ContractRefusedError, NtuNotFoundError) as exc:
        field = "ntu_id" if isinstance(exc, NtuNotFoundError) else "form"
        return await _new_case_page(
            request,
            web,
            session,
            values=values,
            errors={field: _refusal_text(exc)},
            status_code=status_of(exc),
        )
    return RedirectResponse(_case_url(created.case.ref, "created"), status_code=303)


def _refusal_text(exc: ContractRefusedError | NtuNotFoundError) -> str:
    if isinstance(exc, ContractRefusedError):
        return (
            f"Your contract gives no support ({exc.code}: contract status "
            f"{exc.contract_status!r}). Please contact your account manager."
        )
    return f"Site / NTU: {exc}"


# -- maintenance and NTUs ----------------------------------------------------------

_WINDOW_GROUPS: Final = (
    ("current", "Now", (MaintenanceState.ACTIVE,)),
    ("upcoming", "Upcoming", (MaintenanceState.UPCOMING,)),
    ("past", "Past and cancelled", (MaintenanceState.ENDED, MaintenanceState.CANCELLED)),
)


@router.get("/portal/maintenance")
async def maintenance_page(request: Request, web: CustomerPage) -> HTMLResponse:
    """The maintenance windows covering the customer's NTUs (``GET /v1/maintenances``)."""
    views, count = await services.maintenance(request).list_windows(
        principal=web.principal, limit=MAX_WINDOWS
    )
    windows = [maintenance_view(view) for view in views]
    groups = [
        {
            "key": key,
            "title": title,
            "windows": [w for w in windows if w.state in states],
        }
        for key, title, states in _WINDOW_GROUPS
    ]
    return render(
        request,
        "portal/maintenance.html",
        {"groups": groups, "count": count, "shown": len(windows)},
    )


@router.get("/portal/ntus")
async def ntus_page(request: Request, web: CustomerPage, session: SessionDep) -> HTMLResponse:
    """The customer's NTUs and their current status (``GET /v1/ntus``)."""
    customer = own_customer(web.principal, None, field="customer")
    rows = await ntu_repository.list_ntus(
        session, customer_id=customer, status=None, after_id=None, limit=MAX_NTUS
    )
    count = await ntu_repository.count_ntus(session, customer_id=customer, status=None)
    return render(
        request,
        "portal/ntus.html",
        {"ntus": [NtuPublic.from_row(row) for row in rows], "count": count},
    )
