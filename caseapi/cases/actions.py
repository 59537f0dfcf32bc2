"""What people do to cases through the API: create, read with tenancy, and work them.

Mixed into ``CaseService``. Every method takes the calling ``Principal``: a customer
sees only its own customer's cases, and any other case answers ``CaseNotFoundError``
(404 ``case_not_found``), exactly as if it did not exist. Every change runs in one
write transaction: lock the case, check ``If-Match``, run the lifecycle, store, and
record it in the audit log (``caseapi.cases.audit``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.audit import service as audit
from caseapi.audit.enums import AuditAction, AuditOutcome
from caseapi.auth.principal import Principal
from caseapi.auth.tenancy import contract_refusal, customer_scope, ensure_visible, own_customer
from caseapi.cases import audit as case_audit
from caseapi.cases import lifecycle, repository, store
from caseapi.cases.enums import (
    INTERNAL_EVENT_KINDS,
    CaseEventKind,
    CasePriority,
    CaseSource,
    CaseSubject,
    CaseType,
)
from caseapi.cases.errors import (
    CaseValidationError,
    IdempotencyKeyReusedError,
    PreconditionFailedError,
)
from caseapi.cases.models import Case, CaseCommitment, CaseEvent
from caseapi.cases.schemas import CaseCreate
from caseapi.cases.sla import SlaSettings
from caseapi.cases.snapshot import Event
from caseapi.clock import Clock
from caseapi.core.database import session_scope
from caseapi.core.durations import format_duration
from caseapi.core.errors import CaseNotFoundError, NtuNotFoundError
from caseapi.core.transaction import write_retrying
from caseapi.customers import repository as customer_repository
from caseapi.ntus import repository as ntu_repository
from caseapi.oncall.cached import TiersCache
from caseapi.oncall.visible import EscalationShown, escalation_shown


def fingerprint(draft: CaseCreate) -> str:
    """SHA-256 of the canonical body: tells an idempotent retry from a reuse."""
    body = {k: _jsonable(v) for k, v in draft.model_dump().items()}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@dataclass(frozen=True, slots=True)
class CreatedCase:
    case: Case
    created: bool


@dataclass(frozen=True, slots=True)
class EscalationOutlook:
    """Whether the customer may escalate a case now, and if not, why and until when."""

    #: Why not (the words the API's 409 would use); ``None``: escalation is open.
    refusal: str | None
    #: The earliest pending promise whose miss would open it (``None``: none runs).
    next_deadline: datetime | None

    @property
    def allowed(self) -> bool:
        return self.refusal is None


def is_customer_visible(event: CaseEvent) -> bool:
    """Whether a customer may see timeline ``event``.

    Internal kinds never; nor the entry of an internal comment or attachment: it
    holds no body or file name, but its existence, author and time are support's
    business too.
    """
    if event.kind in INTERNAL_EVENT_KINDS:
        return False
    return not (event.kind in _VISIBILITY_KINDS and event.data.get("visibility") != "public")


#: Timeline kinds that are public or internal entry by entry (``data["visibility"]``).
_VISIBILITY_KINDS: Final = frozenset({CaseEventKind.COMMENT_ADDED, CaseEventKind.ATTACHMENT_ADDED})


@dataclass(frozen=True, slots=True)
class CaseDetail:
    """A case with what its views show beside it, read in one session."""

    case: Case
    commitments: list[CaseCommitment]
    #: The reference of the case's upstream incident, if it is linked to one.
    parent_ref: str | None
    #: The references of the cases linked to this one (an upstream incident's).
    linked_refs: list[str]
    #: What the customer is shown of the escalation matrix (level; contact if allowed).
    escalation: EscalationShown


class CaseActions:
    """API-facing operations; needs ``_sessionmaker``, ``_clock``, ``_sla`` and ``_tiers``."""

    _sessionmaker: async_sessionmaker[AsyncSession]
    _clock: Clock
    _sla: SlaSettings
    #: The stored escalation tiers, read at most every few seconds.
    _tiers: TiersCache

    # -- reads ---------------------------------------------------------------------

    async def get_case_for(self, principal: Principal, ref: str) -> Case:
        """Return case ``ref`` if ``principal`` may see it.

        Raises:
            CaseNotFoundError: No such case, or another customer's.
        """
        async with session_scope(self._sessionmaker, reads=True) as session:
            return await store.case_for(session, principal, ref)

    async def get_case_detail_for(self, principal: Principal, ref: str) -> CaseDetail:
        """Case ``ref`` with its commitments and related cases, if ``principal`` may see it.

        One session for all of it (a read of one case is the API's hottest path).

        Raises:
            CaseNotFoundError: No such case, or another customer's.
        """
        async with session_scope(self._sessionmaker, reads=True) as session:
            read = await repository.read_case_by_ref(session, ref=ref)
            if read is None:
                raise CaseNotFoundError(ref)
            # As ``store.case_for``: another customer's case answers as a missing one.
            ensure_visible(principal, read.case.customer_id, CaseNotFoundError(ref))
            case = read.case
            return CaseDetail(
                case=case,
                commitments=await repository.list_commitments(session, case_id=case.id)
                if read.has_commitments
                else [],
                parent_ref=read.parent_ref,
                linked_refs=await repository.list_linked_refs(session, parent_id=case.id)
                if read.has_linked
                else [],
                escalation=await escalation_shown(session, case, self._tiers),
            )

    async def get_detail(self, case: Case) -> CaseDetail:
        """``case`` (just read or written) with its commitments and related cases."""
        async with session_scope(self._sessionmaker) as session:
            return await _detail(session, case, self._tiers)

    async def get_commitments(self, case: Case) -> list[CaseCommitment]:
        """Return the commitments of ``case``, oldest first."""
        async with session_scope(self._sessionmaker) as session:
            return await repository.list_commitments(session, case_id=case.id)

    async def customer_escalation(self, case: Case) -> EscalationOutlook:
        """Whether the customer of ``case`` may escalate it now (the lifecycle's rule,
        ``lifecycle.customer_escalation_refusal``), for a page to explain the button."""
        async with session_scope(self._sessionmaker) as session:
            snapshot = await store.load_snapshot(session, case)
        return EscalationOutlook(
            refusal=lifecycle.customer_escalation_refusal(snapshot),
            next_deadline=lifecycle.next_customer_deadline(snapshot),
        )

    async def get_timeline_for(self, principal: Principal, ref: str) -> list[CaseEvent]:
        """The timeline of ``ref``; customers get only the entries meant for them."""
        case = await self.get_case_for(principal, ref)
        async with session_scope(self._sessionmaker) as session:
            events = await repository.list_events(session, case_id=case.id)
        if not principal.is_customer:
            return events
        return [event for event in events if is_customer_visible(event)]

    # -- create --------------------------------------------------------------------

    async def create_case(
        self, principal: Principal, draft: CaseCreate, *, idempotency_key: str | None = None
    ) -> CreatedCase:
        """Open a reactive case; with ``idempotency_key`` a retry returns the first one.

        Raises:
            CaseValidationError: A business rule on a field (names it).
            CustomerMismatchError: A customer key naming another customer.
            ContractRefusedError: The customer's contract gives no support.
            IdempotencyKeyReusedError: The key came before with another body.
            NtuNotFoundError: ``ntu_id`` is not an NTU of the customer.
        """
        now = self._clock.now()
        draft = self._check_draft(principal, draft, now)
        scope = f"{principal.role.value}:{principal.key_id or principal.name}"
        digest = fingerprint(draft)

        async def work(session: AsyncSession) -> CreatedCase:
            if idempotency_key is not None:
                seen = await repository.get_idempotency_key(
                    session, scope=scope, key=idempotency_key
                )
                if seen is not None:
                    if seen.request_hash != digest:
                        raise IdempotencyKeyReusedError(
                            "this Idempotency-Key was used with a different body"
                        )
                    case = await repository.get_case_by_id(session, case_id=seen.case_id)
                    assert case is not None
                    await self._record_create(session, case, now, AuditOutcome.UNCHANGED)
                    return CreatedCase(case, created=False)
            case = await self._insert(session, principal, draft, now)
            if idempotency_key is not None:
                await repository.add_idempotency_key(
                    session,
                    scope=scope,
                    key=idempotency_key,
                    request_hash=digest,
                    case=case,
                    at=now,
                )
            await self._record_create(session, case, now, AuditOutcome.SUCCESS)
            return CreatedCase(case, created=True)

        # Two requests with one key can race (PostgreSQL); the retry finds the winner.
        return await write_retrying(self._sessionmaker, work)

    async def create_in(
        self,
        session: AsyncSession,
        principal: Principal,
        draft: CaseCreate,
        *,
        now: datetime,
        source: CaseSource,
    ) -> Case:
        """``create_case`` inside the caller's write transaction, for another channel.

        The same rules, insert and audit row as the API's; ``source`` is the channel
        (a customer's API request is always ``api``; its mail is ``email``).

        Raises:
            CaseValidationError: A business rule on a field (names it).
            ContractRefusedError: The customer's contract gives no support.
            NtuNotFoundError: ``ntu_id`` is not an NTU of the customer.
        """
        draft = self._check_draft(principal, draft, now).model_copy(update={"source": source})
        case = await self._insert(session, principal, draft, now)
        await self._record_create(session, case, now, AuditOutcome.SUCCESS)
        return case

    @staticmethod
    async def _record_create(
        session: AsyncSession, case: Case, now: datetime, outcome: AuditOutcome
    ) -> None:
        # ``unchanged``: an Idempotency-Key replay answered with the first case.
        await audit.record(
            session,
            AuditAction.CASE_CREATE,
            at=now,
            target_id=case.ref,
            customer_id=case.customer_id,
            details={
                "type": case.type,
                "priority": case.priority,
                "source": case.source,
                "subject": case.subject,
            },
            outcome=outcome,
        )

    def _check_draft(self, principal: Principal, draft: CaseCreate, now: datetime) -> CaseCreate:
        changes: dict[str, Any] = {}
        if principal.is_customer:
            # Support sets the priority; a customer only suggests one.
            if draft.priority is not None:
                raise CaseValidationError(
                    "priority", "support sets the priority; use suggested_priority"
                )
            changes["customer_id"] = own_customer(principal, draft.customer_id, field="customer_id")
            changes["source"] = CaseSource.API
        elif draft.customer_id is None:
            raise CaseValidationError("customer_id", "required when support opens a case")
        if draft.source is CaseSource.PROACTIVE:
            raise CaseValidationError("source", "proactive cases are opened by the detector")
        priority: CasePriority
        if draft.type is CaseType.INCIDENT:
            if draft.subject is not None:
                raise CaseValidationError("subject", "only general requests have a subject")
            if draft.priority is CasePriority.P3:
                raise CaseValidationError("priority", "an incident is P1 or P2")
            priority = draft.priority or CasePriority.P2
        else:
            if draft.subject is None:
                raise CaseValidationError("subject", "a general request needs a subject")
            if draft.priority not in (None, CasePriority.P3):
                raise CaseValidationError("priority", "a general request is P3")
            priority = CasePriority.P3
        if draft.subject is CaseSubject.ENGINEER_DISPATCH:
            earliest = now + self._sla.dispatch_notice
            notice = format_duration(self._sla.dispatch_notice)
            if draft.requested_date is None or draft.requested_date < earliest:
                raise CaseValidationError(
                    "requested_date",
                    f"an engineer dispatch needs at least {notice} notice: "
                    f"ask for {earliest.isoformat()} or later",
                )
        changes["priority"] = priority
        return draft.model_copy(update=changes)

    async def _insert(
        self, session: AsyncSession, principal: Principal, draft: CaseCreate, now: datetime
    ) -> Case:
        assert draft.customer_id is not None
        assert draft.priority is not None
        customer = await customer_repository.get_customer(session, customer_id=draft.customer_id)
        if customer is None:
            raise CaseValidationError("customer_id", f"no customer {draft.customer_id!r}")
        refusal = contract_refusal(
            customer_id=customer.id, contract_status=customer.contract_status
        )
        if refusal is not None:
            raise refusal
        service_id, site = draft.service_id, draft.site
        if draft.ntu_id is not None:
            row = await ntu_repository.get_ntu(session, ntu_id=draft.ntu_id)
            if row is None or row.ntu.customer_id != customer.id:
                raise NtuNotFoundError(draft.ntu_id)
            service_id = service_id or row.ntu.service_id
            site = site or row.ntu.site
        case = Case(
            type=draft.type,
            priority=draft.priority,
            source=draft.source,
            subject=draft.subject,
            suggested_priority=draft.suggested_priority,
            description=draft.description,
            requested_date=draft.requested_date,
            ntu_id=draft.ntu_id,
            customer_id=customer.id,
            service_id=service_id,
            site=site,
            summary=draft.summary,
            no_support=False,
        )
        data = {
            "type": case.type.value,
            "subject": case.subject.value if case.subject else None,
            "source": case.source.value,
        }
        return await store.insert_case(
            session, case, sla=self._sla, now=now, actor=principal.actor, data=data
        )

    # -- changes -------------------------------------------------------------------

    async def act(
        self,
        principal: Principal,
        ref: str,
        make_event: Callable[[Case], Event],
        *,
        if_match: int | None = None,
    ) -> Case:
        """Apply the event ``make_event(case)`` to case ``ref`` on behalf of ``principal``.

        Raises:
            CaseNotFoundError: No such case, or another customer's.
            PreconditionFailedError: ``if_match`` is not the current version.
            CaseRuleError: The lifecycle refused (nothing changes).
        """
        now = self._clock.now()
        async with session_scope(self._sessionmaker, write=True) as session:
            case = await store.case_for(session, principal, ref, lock=True)
            PreconditionFailedError.check(current=case.version, if_match=if_match)
            event = make_event(case)
            before = case_audit.values_of(case)
            outcome = await store.apply_request(session, case, event, now=now, sla=self._sla)
            await case_audit.record_request(
                session, principal, case, event, before=before, outcome=outcome, at=now
            )
            await session.commit()
            case_id = case.id
        async with session_scope(self._sessionmaker) as session:
            fresh = await repository.get_case_by_id(session, case_id=case_id)
        assert fresh is not None
        return fresh

    def scope_filters(
        self, principal: Principal, filters: repository.CaseFilters
    ) -> repository.CaseFilters:
        """Limit ``filters`` to what ``principal`` may list (a customer: its own
        cases, searched in their public text only)."""
        scope = customer_scope(principal)
        if scope is None:
            return filters
        return replace(filters, customer_id=scope, internal_text=False)


async def _detail(session: AsyncSession, case: Case, tiers: TiersCache) -> CaseDetail:
    parent = None
    if case.parent_case_id is not None:
        parent = await repository.get_case_ref_by_id(session, case_id=case.parent_case_id)
    return CaseDetail(
        case=case,
        commitments=await repository.list_commitments(session, case_id=case.id),
        parent_ref=parent,
        linked_refs=await repository.list_linked_refs(session, parent_id=case.id),
        escalation=await escalation_shown(session, case, tiers),
    )
