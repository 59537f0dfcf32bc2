"""HTTP routes for cases: parse, check the role, call the service, shape the answer.

Who may do what (tenancy is the service's: another customer's case is a 404):

- read (list, get, timeline): every role; customers their own cases, customer view.
  A customer's ``customer`` filter may name only itself (else 403 ``customer_mismatch``).
- create: customers (their own customer; naming another is 403 ``customer_mismatch``)
  and staff / service (any customer).
- work (PATCH, transitions, assign, take, handoff, forward, classification,
  commitments, ETR): staff. ``team`` (filter and field) is staff-only.
- escalate, reopen: customers (own cases) and staff; reply: customers.
- cancel: customers (their own reactive requests, not proactive incidents) and staff.

Changes honour ``If-Match`` (the ``ETag`` from ``GET``); a stale one is 412.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse

from caseapi.api.openapi import errors
from caseapi.api.responses import model_response
from caseapi.auth.deps import (
    CurrentPrincipal,
    RateLimiterDep,
    StaffPrincipal,
    charge_customer,
    require_roles,
)
from caseapi.auth.errors import CustomerMismatchError
from caseapi.auth.principal import STAFF_ROLES, Principal, Role
from caseapi.auth.tenancy import own_customer
from caseapi.cases.actions import CaseDetail
from caseapi.cases.deps import CaseServiceDep
from caseapi.cases.enums import (
    CasePriority,
    CaseSeverity,
    CaseSource,
    CaseStatus,
    CaseType,
    EscalationLevel,
)
from caseapi.cases.errors import (
    CancelNotAllowedError,
    CaseRuleError,
    CaseValidationError,
    EscalationNotAllowedError,
    EtrNotAllowedError,
    IdempotencyKeyReusedError,
    InvalidTransitionError,
    PreconditionFailedError,
    ReopenNotAllowedError,
)
from caseapi.cases.models import Case
from caseapi.cases.repository import CaseFilters
from caseapi.cases.schemas import (
    AssignRequest,
    CancelRequest,
    CaseCreate,
    CaseCustomerView,
    CaseEventPublic,
    CasePublic,
    CasesPublic,
    CaseTimelinePublic,
    CaseUpdate,
    ClassificationRequest,
    CommitmentCreate,
    CustomerCasesPage,
    EscalationPublic,
    EtrRequest,
    ForwardRequest,
    HandOffRequest,
    QueryTime,
    ReasonRequest,
    StaffCasesPage,
    TransitionRequest,
)
from caseapi.cases.search import (
    MAX_SEARCH_LENGTH,
    MAX_SEARCH_TERMS,
    SearchSyntaxError,
    parse_search,
)
from caseapi.cases.service import MAX_PAGE_SIZE, CaseService
from caseapi.cases.snapshot import (
    Assign,
    Cancel,
    ChangePriority,
    Commitment,
    CustomerReply,
    Escalate,
    Event,
    HandOff,
    MeetCommitment,
    Reclassify,
    Reopen,
    SetCommitment,
    Transition,
)
from caseapi.core.base import ACTOR_LENGTH
from caseapi.core.deps import RowId, SessionmakerDep
from caseapi.core.errors import NtuNotFoundError
from caseapi.ratelimit.service import Limit
from caseapi.teams.service import forward_target

router = APIRouter(prefix="/v1/cases", tags=["cases"])
#: ``GET /v1/cases``'s page size when ``limit`` is not given.
PAGE_SIZE: Final = 50
#: The longest ``cursor`` accepted (ours are far shorter).
CURSOR_LENGTH: Final = 200

CustomerOrStaff = Annotated[Principal, Depends(require_roles(Role.CUSTOMER, *STAFF_ROLES))]
CustomerOnly = Annotated[Principal, Depends(require_roles(Role.CUSTOMER))]
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=100)]
_ETAG: Final = re.compile(r'^(?:W/)?"v(\d+)"$')
#: A case answer: staff and service keys get ``CasePublic``, customer keys
#: ``CaseCustomerView`` (no internal fields); the ``ETag`` header is its version.
_CASE_VIEW: Final[dict[str, Any]] = {
    "model": CasePublic | CaseCustomerView,
    "description": "The case: `CasePublic` for staff, `CaseCustomerView` for customers",
    "headers": {"ETag": {"schema": {"type": "string"}, "description": "the case version"}},
}
#: What a lifecycle action may be refused with besides the app-wide problems.
_RULES: Final = (
    InvalidTransitionError,
    EscalationNotAllowedError,
    ReopenNotAllowedError,
    CancelNotAllowedError,
    EtrNotAllowedError,
    CaseRuleError,
)
_CASE_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {200: _CASE_VIEW, **errors(*_RULES)}
_Q_HELP: Final = (
    "Full-text search of the reference, summary, description and comments (customers:"
    " public comments only). Every word must match; a word of several parts"
    " (`CS-2026-000042`) matches them in a row; the last word matches as a prefix"
    " unless it is a whole case reference or the text ends with a space; no stemming;"
    f" punctuation only separates words. At most {MAX_SEARCH_LENGTH} characters and"
    f" {MAX_SEARCH_TERMS} different words. Results keep"
    " the list's order (newest first) and combine with every other filter."
)
_SEVERITY_HELP: Final = (
    "Impact: `outage` (incident at P1), `degraded` (incident below P1), `request`"
    " (general request). Repeat to match any of them."
)


def etag(case: Case) -> str:
    """The ``ETag`` of a case version."""
    return f'"v{case.version}"'


def _if_match(value: str | None) -> int | None:
    if value is None or value.strip() == "*":
        return None
    match = _ETAG.match(value.strip())
    if match is None:
        raise PreconditionFailedError(f"If-Match {value!r} is not an ETag this API issued")
    return int(match.group(1))


async def _case_response(
    service: CaseService, principal: Principal, case: Case, *, status: int = 200
) -> JSONResponse:
    return detail_response(principal, await service.get_detail(case), status=status)


def detail_response(principal: Principal, detail: CaseDetail, *, status: int = 200) -> JSONResponse:
    """A case as ``principal`` may see it, with its ETag (also ``caseapi.cases.hot_read``'s)."""
    case, commitments = detail.case, detail.commitments
    parent, linked = detail.parent_ref, detail.linked_refs
    escalation = EscalationPublic.of(detail.escalation)
    view: CaseCustomerView
    if principal.is_customer:
        # The parent's reference only: the upstream incident itself (and the other
        # customers on it) stays internal.
        view = CaseCustomerView.from_case(case, commitments, parent=parent, escalation=escalation)
    else:
        view = CasePublic.from_case(
            case, commitments, parent=parent, linked=linked, escalation=escalation
        )
    return model_response(view, status_code=status, headers={"ETag": etag(case)})


async def _act(
    service: CaseService, principal: Principal, ref: str, event: Event, if_match: str | None
) -> JSONResponse:
    """Apply one lifecycle ``event`` to ``ref`` and answer with the changed case."""
    case = await service.act(principal, ref, lambda _: event, if_match=_if_match(if_match))
    return await _case_response(service, principal, case)


@router.get("", response_model=CasesPublic, responses=errors(CustomerMismatchError))
async def list_cases(
    principal: CurrentPrincipal,
    request: Request,
    status: Annotated[list[CaseStatus] | None, Query()] = None,
    priority: Annotated[list[CasePriority] | None, Query()] = None,
    type: Annotated[list[CaseType] | None, Query()] = None,
    source: Annotated[list[CaseSource] | None, Query()] = None,
    escalation_level: Annotated[list[EscalationLevel] | None, Query()] = None,
    assignee: Annotated[str | None, Query(max_length=ACTOR_LENGTH)] = None,
    team: Annotated[str | None, Query(max_length=64, description="staff only")] = None,
    customer: Annotated[str | None, Query(max_length=64)] = None,
    ntu: Annotated[str | None, Query(max_length=64)] = None,
    created_since: Annotated[QueryTime | None, Query()] = None,
    created_before: Annotated[QueryTime | None, Query()] = None,
    updated_since: Annotated[QueryTime | None, Query()] = None,
    severity: Annotated[list[CaseSeverity] | None, Query(description=_SEVERITY_HELP)] = None,
    q: Annotated[str | None, Query(max_length=MAX_SEARCH_LENGTH, description=_Q_HELP)] = None,
    cursor: Annotated[str | None, Query(max_length=CURSOR_LENGTH)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = PAGE_SIZE,
) -> JSONResponse:
    """List cases, newest first; repeat a filter to match any of several values."""
    service: CaseService = request.app.state.case_service  # as ``get_case``
    try:
        search = None if q is None else parse_search(q)
    except SearchSyntaxError as exc:
        raise CaseValidationError("q", str(exc)) from None
    if created_since and created_before and created_before <= created_since:
        raise CaseValidationError(
            "created_before",
            "must be later than created_since",
            others={"created_since": "must be earlier than created_before"},
        )
    filters = CaseFilters(
        statuses=status or (),
        priorities=priority or (),
        types=type or (),
        sources=source or (),
        # Customers cannot filter on internal fields.
        escalation_levels=() if principal.is_customer else (escalation_level or ()),
        assignee=None if principal.is_customer else assignee,
        team_id=None if principal.is_customer else team,
        customer_id=own_customer(principal, customer, field="customer"),
        ntu_id=ntu,
        created_since=created_since,
        created_before=created_before,
        updated_since=updated_since,
        severities=severity or (),
        search=search,
        # Only a search reads text (and only then is the listing another one for staff).
        internal_text=search is not None and not principal.is_customer,
    )
    return await page_response(service, principal, filters, cursor=cursor, limit=limit)


async def page_response(
    service: CaseService,
    principal: Principal,
    filters: CaseFilters,
    *,
    cursor: str | None,
    limit: int,
) -> JSONResponse:
    """A page of the cases ``principal`` may see among ``filters`` (``list_cases``'s and
    ``caseapi.cases.hot_read``'s)."""
    page = await service.list_cases(
        filters=service.scope_filters(principal, filters), cursor=cursor, limit=limit
    )
    # The document's ``CasesPublic``, encoded once without its union (``StaffCasesPage``).
    body: CustomerCasesPage | StaffCasesPage
    if principal.is_customer:
        body = CustomerCasesPage.of(page.items, count=page.count, next_cursor=page.next_cursor)
    else:
        body = StaffCasesPage.of(page.items, count=page.count, next_cursor=page.next_cursor)
    return model_response(body)


@router.post(
    "",
    response_model=None,
    responses={
        200: _CASE_VIEW,
        201: _CASE_VIEW,
        **errors(
            CustomerMismatchError,
            (403, "contract_expired"),
            (403, "account_suspended_unpaid"),
            IdempotencyKeyReusedError,
            NtuNotFoundError,
        ),
    },
)
async def create_case(
    body: CaseCreate,
    service: CaseServiceDep,
    principal: CurrentPrincipal,
    limiter: RateLimiterDep,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
    ] = None,
) -> JSONResponse:
    """Open a reactive case (201; 200 with the original for a repeated Idempotency-Key)."""
    await charge_customer(limiter, Limit.CASE_CREATION_PER_CUSTOMER, principal)
    created = await service.create_case(principal, body, idempotency_key=idempotency_key)
    return await _case_response(
        service, principal, created.case, status=201 if created.created else 200
    )


@router.get("/{ref}", response_model=None, responses={200: _CASE_VIEW})
async def get_case(ref: str, principal: CurrentPrincipal, request: Request) -> JSONResponse:
    """Get one case by its reference (with its ETag)."""
    # The service from the app's state, not a dependency (the hottest read: FastAPI's
    # cost per dependency, as ``get_principal``).
    service: CaseService = request.app.state.case_service
    return detail_response(principal, await service.get_case_detail_for(principal, ref))


@router.patch("/{ref}", response_model=None, responses=_CASE_RESPONSES)
async def update_case(
    ref: str,
    body: CaseUpdate,
    service: CaseServiceDep,
    principal: StaffPrincipal,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Change a case's priority (support sets it; deadlines follow)."""
    if body.priority is None:
        raise CaseValidationError("priority", "nothing to change")
    event = ChangePriority(priority=body.priority, actor=principal.actor, reason=body.reason or "")
    return await _act(service, principal, ref, event, if_match)


@router.get("/{ref}/timeline")
async def get_case_timeline(
    ref: str, service: CaseServiceDep, principal: CurrentPrincipal
) -> CaseTimelinePublic:
    """Get the timeline of one case, oldest entry first."""
    events = await service.get_timeline_for(principal, ref)
    data = [CaseEventPublic.from_event(e, for_customer=principal.is_customer) for e in events]
    return CaseTimelinePublic(ref=ref, data=data, count=len(data))


@router.post("/{ref}/transitions", response_model=None, responses=_CASE_RESPONSES)
async def transition_case(
    ref: str,
    body: TransitionRequest,
    service: CaseServiceDep,
    principal: StaffPrincipal,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Move a case to another status, as the lifecycle allows (409 otherwise)."""
    return await _act(service, principal, ref, transition_event(body, principal), if_match)


def transition_event(body: TransitionRequest, principal: Principal) -> Transition:
    """The lifecycle event of a transition request (the API's and the console's).

    Raises:
        CaseValidationError: Solving without a resolution method or root cause.
    """
    if body.to is CaseStatus.SOLVED:
        if body.resolution_method is None:
            raise CaseValidationError("resolution_method", "required to solve a case")
        if body.root_cause_category is None:
            raise CaseValidationError("root_cause_category", "required to solve a case")
    return Transition(
        to=body.to,
        actor=principal.actor,
        reason=body.reason or "",
        resolution_method=body.resolution_method,
        root_cause_category=body.root_cause_category,
        resolution=body.resolution,
        merged_into=body.merged_into,
    )


@router.post("/{ref}/assign", response_model=None, responses=_CASE_RESPONSES)
async def assign_case(
    ref: str,
    body: AssignRequest,
    service: CaseServiceDep,
    principal: StaffPrincipal,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Assign the case to an engineer."""
    event = Assign(assignee=body.assignee, actor=principal.actor)
    return await _act(service, principal, ref, event, if_match)


@router.post("/{ref}/take", response_model=None, responses=_CASE_RESPONSES)
async def take_case(
    ref: str, service: CaseServiceDep, principal: StaffPrincipal, if_match: IfMatch = None
) -> JSONResponse:
    """Assign the case to yourself."""
    event = Assign(assignee=principal.name, actor=principal.actor)
    return await _act(service, principal, ref, event, if_match)


@router.post("/{ref}/handoff", response_model=None, responses=_CASE_RESPONSES)
async def hand_off_case(
    ref: str,
    body: HandOffRequest,
    service: CaseServiceDep,
    principal: StaffPrincipal,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Forward the case to a specialist level with a structured summary."""
    event = HandOff(
        actor=principal.actor,
        to_level=body.to_level,
        assignee=body.assignee,
        summary=body.summary_fields(),
    )
    return await _act(service, principal, ref, event, if_match)


@router.post("/{ref}/forward", response_model=None, responses=_CASE_RESPONSES)
async def forward_case(
    ref: str,
    body: ForwardRequest,
    service: CaseServiceDep,
    sessionmaker: SessionmakerDep,
    principal: StaffPrincipal,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Forward the case to a team and / or a member of the organisation, with the
    structured hand-off summary; the case takes the team's level when higher."""
    target = await forward_target(sessionmaker, team=body.team, assignee=body.assignee)
    event = target.handoff(actor=principal.actor, summary=body.summary_fields())
    case = await service.act(principal, ref, event, if_match=_if_match(if_match))
    return await _case_response(service, principal, case)


@router.patch("/{ref}/classification", response_model=None, responses=_CASE_RESPONSES)
async def classify_case(
    ref: str,
    body: ClassificationRequest,
    service: CaseServiceDep,
    principal: StaffPrincipal,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Correct the case's type and subject (timeline: `type_changed`, `subject_changed`;
    the priority follows the type when it must: an incident is P1/P2, a request P3)."""
    if body.type is CaseType.INCIDENT and body.subject is not None:
        raise CaseValidationError("subject", "only general requests have a subject")
    if body.type is CaseType.GENERAL_REQUEST and body.subject is None:
        raise CaseValidationError("subject", "a general request needs a subject")

    def event(case: Case) -> Reclassify:
        if case.source is CaseSource.PROACTIVE and body.type is not CaseType.INCIDENT:
            raise CaseValidationError(
                "type", "a proactive case is an incident (the detector saw an outage)"
            )
        return Reclassify(
            actor=principal.actor, type=body.type, subject=body.subject, reason=body.reason or ""
        )

    case = await service.act(principal, ref, event, if_match=_if_match(if_match))
    return await _case_response(service, principal, case)


@router.post("/{ref}/commitments", response_model=None, responses=_CASE_RESPONSES)
async def add_commitment(
    ref: str,
    body: CommitmentCreate,
    service: CaseServiceDep,
    principal: StaffPrincipal,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Promise something by a time ("next update in 30 min", "on site by 14:00")."""
    event = commitment_event(body, principal, now=service.clock.now())
    return await _act(service, principal, ref, event, if_match)


def commitment_event(
    body: CommitmentCreate, principal: Principal, *, now: datetime
) -> SetCommitment:
    """The lifecycle event of a commitment request (the API's and the console's).

    Raises:
        CaseValidationError: Both or neither of ``due_at`` and ``within_minutes``.
    """
    if (body.due_at is None) == (body.within_minutes is None):
        raise CaseValidationError("due_at", "give exactly one of due_at and within_minutes")
    due_at = body.due_at or now + timedelta(minutes=body.within_minutes or 0)
    commitment = Commitment(kind=body.kind, due_at=due_at, note=body.note, set_by=principal.actor)
    return SetCommitment(commitment=commitment, actor=principal.actor)


@router.post(
    "/{ref}/commitments/{commitment_id}/met", response_model=None, responses=_CASE_RESPONSES
)
async def meet_commitment(
    ref: str,
    commitment_id: RowId,
    service: CaseServiceDep,
    principal: StaffPrincipal,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Mark a commitment as kept."""
    event = MeetCommitment(commitment_id=commitment_id, actor=principal.actor)
    return await _act(service, principal, ref, event, if_match)


@router.put("/{ref}/etr", response_model=None, responses=_CASE_RESPONSES)
async def set_case_etr(
    ref: str,
    body: EtrRequest,
    service: CaseServiceDep,
    principal: StaffPrincipal,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Set, change or clear (null) an incident's estimated time of restoration."""
    case = await service.set_etr(
        principal, ref, etr=body.etr, note=body.note, if_match=_if_match(if_match)
    )
    return await _case_response(service, principal, case)


@router.post("/{ref}/escalate", response_model=None, responses=_CASE_RESPONSES)
async def escalate_case(
    ref: str,
    service: CaseServiceDep,
    principal: CustomerOrStaff,
    body: ReasonRequest | None = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Escalate one level; customers only once a commitment was missed (409 otherwise)."""
    event = Escalate(
        actor=principal.actor,
        by_customer=principal.is_customer,
        reason=body.reason if body is not None else "",
    )
    return await _act(service, principal, ref, event, if_match)


@router.post("/{ref}/reopen", response_model=None, responses=_CASE_RESPONSES)
async def reopen_case(
    ref: str,
    service: CaseServiceDep,
    principal: CustomerOrStaff,
    body: ReasonRequest | None = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Put a solved case back to work while its monitoring window runs (409 after)."""
    event = Reopen(actor=principal.actor, reason=body.reason if body is not None else "")
    return await _act(service, principal, ref, event, if_match)


@router.post("/{ref}/cancel", response_model=None, responses=_CASE_RESPONSES)
async def cancel_case(
    ref: str,
    body: CancelRequest,
    service: CaseServiceDep,
    principal: CustomerOrStaff,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Withdraw a case: customers their own requests (not proactive incidents), staff any."""
    event = Cancel(actor=principal.actor, reason=body.reason, by_customer=principal.is_customer)
    return await _act(service, principal, ref, event, if_match)


@router.post("/{ref}/reply", response_model=None, responses=_CASE_RESPONSES)
async def reply_to_case(
    ref: str, service: CaseServiceDep, principal: CustomerOnly, if_match: IfMatch = None
) -> JSONResponse:
    """Answer support as the customer: a case waiting on you goes back to work."""
    event = CustomerReply(actor=principal.actor)
    return await _act(service, principal, ref, event, if_match)
