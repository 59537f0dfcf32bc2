"""HTTP shapes for cases (Pydantic lives only at the edge).

Two views of a case:

- ``CasePublic`` for staff and service callers: everything.
- ``CaseCustomerView`` for customer keys. Internal fields never appear in it:
  ``dedup_key`` (detector plumbing), ``no_support`` (an entitlement flag for the
  NOC), ``assignee`` / ``assigned`` details, ``escalation_level`` and the breach /
  flag timestamps (``first_response_breached_at``, ``ttr_breached_at``,
  ``unassigned_flagged_at``, ``auto_close_held_at``: how support organises
  itself), ``paused_at``, ``next_due_at``, ``created_by`` and ``version`` (sent as
  the ``ETag`` header instead). Hand-offs live only in the timeline, whose internal
  kinds (``caseapi.cases.enums.INTERNAL_EVENT_KINDS``) customers never get.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)
from sqlalchemy import inspect as sa_inspect

from caseapi.cases.enums import (
    CaseEventKind,
    CasePriority,
    CaseSource,
    CaseStatus,
    CaseSubject,
    CaseType,
    CommitmentKind,
    EscalationLevel,
    RootCauseCategory,
)
from caseapi.cases.models import Case, CaseCommitment, CaseEvent
from caseapi.core.wire import JsonInt, JsonTime, internal, shown_to_customers
from caseapi.oncall.visible import EscalationShown

Text = Annotated[str, Field(min_length=1, max_length=4000)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
Name = Annotated[str, Field(min_length=1, max_length=64)]


class CommitmentPublic(BaseModel):
    """A promise on a case and whether it was kept."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: int
    kind: CommitmentKind
    due_at: datetime
    note: str
    met_at: datetime | None
    missed_at: datetime | None


class EscalationPublic(BaseModel):
    """The escalation of a case as its customer is shown it.

    ``level``: L1, L2 or L3. ``contact``: the person to ask for at that level, only
    when the customer's contract tier says ``customer_sees: level_and_contact`` and
    the level names one (team names and on-call people are never shown).
    """

    model_config = ConfigDict(frozen=True)

    level: EscalationLevel
    contact: str | None = None

    @classmethod
    def of(cls, shown: EscalationShown) -> EscalationPublic:
        """From what the escalation matrix lets the customer see."""
        return cls(level=EscalationLevel(shown.level), contact=shown.contact)


class CaseCustomerView(BaseModel):
    """A case as its customer sees it; ``recurrence_of`` is the earlier case's reference.

    ``parent``: the upstream incident this case is linked to (its reference; filled
    on single-case responses).
    """

    model_config = ConfigDict(frozen=True)

    ref: str
    type: CaseType
    priority: CasePriority
    suggested_priority: CasePriority | None
    subject: CaseSubject | None
    status: CaseStatus
    source: CaseSource
    ntu_id: str | None
    customer_id: str | None
    service_id: str | None
    site: str | None
    summary: str
    description: str | None
    requested_date: datetime | None
    outage_start: datetime | None
    detected_at: datetime | None
    restored_at: datetime | None
    solved_at: datetime | None
    monitoring_until: datetime | None
    reopen_count: int
    recurrence_of: str | None
    first_response_due_at: datetime | None
    first_responded_at: datetime | None
    ttr_due_at: datetime | None
    waiting_since: datetime | None
    auto_close_due_at: datetime | None
    rfo_published_at: datetime | None
    resolution_method: str | None
    root_cause_category: RootCauseCategory | None
    resolution: str | None
    closed_at: datetime | None
    #: The estimated time of restoration support gave (``None``: none given).
    etr: datetime | None
    created_at: datetime
    updated_at: datetime
    commitments: list[CommitmentPublic] = []
    parent: str | None = None
    #: The level and, where the contract allows, the contact (single-case responses).
    escalation: EscalationPublic | None = None

    @classmethod
    def from_case(
        cls, case: Case, commitments: list[CaseCommitment] | None = None, **later: Any
    ) -> CaseCustomerView:
        """Build from a ``Case`` loaded with ``previous_case``; ``later``: the fields
        filled from elsewhere (``parent``, ``escalation``)."""
        return cls.model_validate(_case_fields(cls, case, commitments) | later)


class CasePublic(CaseCustomerView):
    """A case as support and service callers see it, internal fields included.

    On an upstream incident: ``affected`` NTUs and the ``linked`` customer cases
    (references; filled on single-case responses).
    """

    dedup_key: str | None
    no_support: bool
    assignee: str | None
    escalation_level: EscalationLevel
    first_response_breached_at: datetime | None
    unassigned_flagged_at: datetime | None
    ttr_breached_at: datetime | None
    paused_at: datetime | None
    auto_close_held_at: datetime | None
    next_due_at: datetime | None
    created_by: str | None
    version: int
    affected: list[dict[str, str]] | None = None
    linked: list[str] = []
    #: The team working the case (``GET /v1/teams/{id}``); customers never see it.
    team: str | None = None

    @classmethod
    def from_case(
        cls, case: Case, commitments: list[CaseCommitment] | None = None, **later: Any
    ) -> CasePublic:
        """Build from a ``Case`` loaded with ``previous_case``; ``later``: the fields
        filled from elsewhere (``parent``, ``linked``, ``escalation``)."""
        return cls.model_validate(_case_fields(cls, case, commitments) | later)


#: The fields of a case view not read from the case's column of the same name.
_FILLED_LATER: Final = frozenset(
    {"recurrence_of", "commitments", "parent", "linked", "team", "escalation"}
)


@cache
def _field_names(model: type[BaseModel]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``model``'s fields read from the case: its columns, and the other attributes."""
    columns = {prop.key for prop in sa_inspect(Case).column_attrs}
    names = [name for name in model.model_fields if name not in _FILLED_LATER]
    return (
        tuple(name for name in names if name in columns),
        tuple(name for name in names if name not in columns),
    )


def _case_fields(
    model: type[BaseModel], case: Case, commitments: list[CaseCommitment] | None
) -> dict[str, Any]:
    columns, others = _field_names(model)
    # A loaded column's value is in the instance's ``__dict__``: reading it there
    # skips the ORM's attribute machinery (a page of 50 cases: 0.4 ms instead of 0.9
    # ms). An expired or deferred column is not there: then all go through the ORM.
    loaded = case.__dict__
    try:
        values: dict[str, Any] = {name: loaded[name] for name in columns}
    except KeyError:
        values = {name: getattr(case, name) for name in columns}
    for name in others:
        values[name] = getattr(case, name)
    if "team" in model.model_fields:
        values["team"] = case.team_id
    previous = case.previous_case if case.recurrence_of is not None else None
    values["recurrence_of"] = previous.ref if previous is not None else None
    values["commitments"] = [CommitmentPublic.model_validate(c) for c in commitments or []]
    return values


class CasesPublic(BaseModel):
    """One page of cases; ``count`` is the number matching the filters on all pages."""

    data: list[CasePublic] | list[CaseCustomerView]
    count: int
    next_cursor: str | None


class StaffCasesPage(BaseModel):
    """``CasesPublic`` of staff and service callers, as it is encoded: the same JSON,
    without the union (Pydantic encodes a union of lists about twice as slowly: it
    tries each member)."""

    data: list[CasePublic]
    count: int
    next_cursor: str | None

    @classmethod
    def of(cls, cases: Sequence[Case], *, count: int, next_cursor: str | None) -> StaffCasesPage:
        """The page of ``cases`` (loaded with ``previous_case``), validated in one call:
        50 ``CasePublic.from_case`` calls cost ~20 % more than one for the page."""
        data = [_case_fields(CasePublic, case, None) for case in cases]
        return cls.model_validate({"data": data, "count": count, "next_cursor": next_cursor})


class CustomerCasesPage(BaseModel):
    """``CasesPublic`` of a customer key, as it is encoded (``StaffCasesPage``)."""

    data: list[CaseCustomerView]
    count: int
    next_cursor: str | None

    @classmethod
    def of(cls, cases: Sequence[Case], *, count: int, next_cursor: str | None) -> CustomerCasesPage:
        """As ``StaffCasesPage.of``, in the customer's view."""
        data = [_case_fields(CaseCustomerView, case, None) for case in cases]
        return cls.model_validate({"data": data, "count": count, "next_cursor": next_cursor})


class CaseCreate(BaseModel):
    """A reactive case, as the API and the service take it (checked here for shape,
    by ``CaseService.create_case`` for the rules). Customers may only suggest a
    priority; support sets it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: CaseType
    summary: Annotated[ShortText, shown_to_customers("the case's `summary`")]
    description: Annotated[Text | None, shown_to_customers("the case's `description`")] = None
    customer_id: Name | None = None
    priority: CasePriority | None = None
    suggested_priority: CasePriority | None = None
    subject: CaseSubject | None = None
    ntu_id: Name | None = None
    service_id: Name | None = None
    site: Annotated[ShortText | None, shown_to_customers("the case's `site`")] = None
    source: CaseSource = CaseSource.API
    requested_date: JsonTime | None = None


class CaseUpdate(BaseModel):
    """Support's edits; every field optional. ``reason`` goes on the timeline."""

    model_config = ConfigDict(extra="forbid")

    priority: CasePriority | None = None
    reason: Annotated[
        ShortText | None,
        shown_to_customers("the `reason` of the timeline's `priority_changed` entry"),
    ] = None


class TransitionRequest(BaseModel):
    """Move a case; ``solved`` needs ``resolution_method`` and ``root_cause_category``."""

    model_config = ConfigDict(extra="forbid")

    to: CaseStatus
    reason: Annotated[
        ShortText | None,
        shown_to_customers("the `reason` of the timeline's `status_changed` / `closed` entry"),
    ] = None
    resolution_method: Annotated[
        Name | None, shown_to_customers("the case's `resolution_method`")
    ] = None
    root_cause_category: RootCauseCategory | None = None
    resolution: Annotated[Text | None, shown_to_customers("the case's `resolution`")] = None
    merged_into: Name | None = None


class AssignRequest(BaseModel):
    """``assignee: null`` puts the case back in the queue (the unassigned flag re-arms)."""

    model_config = ConfigDict(extra="forbid")

    assignee: Name | None


_HANDOFF: Final = "a hand-off is an internal timeline entry (`handed_off`)"


class _HandOffSummary(BaseModel):
    """The structured hand-off summary DOMAIN.md asks for."""

    model_config = ConfigDict(extra="forbid")

    summary: Annotated[ShortText, internal(_HANDOFF)]
    details: Annotated[Text, internal(_HANDOFF)]
    tests_done: Annotated[list[ShortText], internal(_HANDOFF)] = []
    open_questions: Annotated[list[ShortText], internal(_HANDOFF)] = []
    hypotheses: Annotated[list[ShortText], internal(_HANDOFF)] = []

    def summary_fields(self) -> dict[str, Any]:
        """The summary as the ``handed_off`` entry stores it."""
        return self.model_dump(
            include={"summary", "details", "tests_done", "open_questions", "hypotheses"}
        )


class HandOffRequest(_HandOffSummary):
    """Forward to a specialist level with the structured summary."""

    to_level: EscalationLevel
    assignee: Name | None = None


class ForwardRequest(_HandOffSummary):
    """Forward to a team and / or a person of the organisation (at least one), with
    the structured summary. The case takes the team's level when it is higher."""

    team: Name | None = None
    assignee: Name | None = None


class ClassificationRequest(BaseModel):
    """Correct what a case is: ``type`` and, for a general request, ``subject``."""

    model_config = ConfigDict(extra="forbid")

    type: CaseType
    subject: CaseSubject | None = None
    reason: Annotated[
        ShortText | None,
        shown_to_customers("the `reason` of the timeline's `type_changed` / `subject_changed`"),
    ] = None


class CommitmentCreate(BaseModel):
    """A promise: give ``due_at`` or ``within_minutes`` (exactly one)."""

    model_config = ConfigDict(extra="forbid")

    kind: CommitmentKind
    due_at: JsonTime | None = None
    within_minutes: Annotated[JsonInt, Field(ge=1, le=60 * 24 * 30)] | None = None
    note: Annotated[
        str,
        Field(max_length=500),
        shown_to_customers("the commitment's `note` on the case and its `commitment_set` entry"),
    ] = ""


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("the time is out of range once converted to UTC") from exc


#: A date and a time of day: what an ISO 8601 / RFC 3339 timestamp starts with.
_ISO_DATE_TIME: Final = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_text(value: object) -> object:
    # Pydantic reads a number, or a string of one (``0.5``), as Unix time: a filter
    # like ``updated_since=0.5`` would silently mean 1970. Only ISO text is a time here.
    if isinstance(value, str) and not _ISO_DATE_TIME.match(value):
        raise ValueError("expected an ISO 8601 time with a UTC offset, e.g. 2026-03-01T12:00:00Z")
    return value


#: A time in a query parameter (``created_since``, ``updated_since``): ISO 8601 with
#: an offset (a naive or numeric one is refused), converted to UTC.
QueryTime = Annotated[AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_in_utc)]


class EtrRequest(BaseModel):
    """Set the estimated time of restoration (an aware time in the future) or clear it
    (``etr: null``); ``note`` goes to the customer with it."""

    model_config = ConfigDict(extra="forbid")

    etr: Annotated[JsonTime, AfterValidator(_in_utc)] | None
    note: Annotated[
        str,
        Field(max_length=500),
        shown_to_customers("the timeline's `etr_set` entry and the ETR notification"),
    ] = ""


class ReasonRequest(BaseModel):
    """A free-text reason (escalate, reopen)."""

    model_config = ConfigDict(extra="forbid")

    reason: Annotated[
        str,
        Field(max_length=500),
        shown_to_customers(
            "on reopen, the `reason` of the timeline's `reopened` entry "
            "(an escalation, and so its reason, stays internal)"
        ),
    ] = ""


class CancelRequest(BaseModel):
    """Why the case is withdrawn; required, and not blank."""

    model_config = ConfigDict(extra="forbid")

    reason: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
        shown_to_customers("the `reason` of the timeline's `status_changed` entry"),
    ]


class CaseEventPublic(BaseModel):
    """One timeline entry."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    at: datetime
    kind: CaseEventKind
    actor: str
    data: dict[str, Any]

    @classmethod
    def from_event(cls, event: CaseEvent, *, for_customer: bool = False) -> CaseEventPublic:
        """Build from a ``CaseEvent``; customer copies lose internal data keys."""
        public = cls.model_validate(event)
        if for_customer:
            hidden = _INTERNAL_DATA_KEYS - _CUSTOMER_DATA_KEYS.get(event.kind, frozenset())
            data = {k: v for k, v in event.data.items() if k not in hidden}
            public = public.model_copy(update={"data": data})
        return public


#: Timeline data that only support sees (same reasons as the internal case fields).
_INTERNAL_DATA_KEYS = frozenset({"dedup_key", "no_support", "assignee", "previous"})
#: Exceptions per kind: an ETR's ``previous`` is the estimate the customer was given.
_CUSTOMER_DATA_KEYS: dict[str, frozenset[str]] = {CaseEventKind.ETR_SET: frozenset({"previous"})}


class CaseTimelinePublic(BaseModel):
    """The timeline of one case, oldest entry first."""

    ref: str
    data: list[CaseEventPublic]
    count: int
