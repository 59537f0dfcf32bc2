"""RFO drafts, publication and reading, with the rules of DOMAIN.md "RFO".

- Staff (engineer, noc, admin) edit the draft (``update_draft``) and publish it.
  With no version yet, the draft is version 1; once the newest version is
  published, the next edit starts a correction: a new draft version copied from it.
- A published version never changes: ``apply_changes`` refuses it (and database
  triggers back this up). Publishing freezes the generated facts into the row,
  calls ``caseapi.cases.store.mark_rfo_published`` (which records the first
  publication on the case and may close it) and, for corrections, writes an
  ``rfo_published`` timeline entry with the version (the lifecycle writes the
  entry for the first publication).
- Publishing needs root cause (with category), corrective and preventive actions;
  instead of preventive actions the engineer may give the reason none apply
  (``preventive_not_applicable``).
- An upstream incident's RFO reaches its linked customer cases: publishing it
  publishes a version on each (the engineer's text of the incident, the facts of
  the customer's own case, ``incident_ref`` naming the incident), which notifies the
  customer and lets the case close like any other. Nothing of another customer is
  in it. A linked case's own draft is replaced by the incident's text.
- Customers read only the newest published version of their own cases; anything
  else answers 404 ``rfo_not_found``. Staff read any version, or the draft.
- The PDF (``get_published``) is made only of published versions: without a
  version number the newest published one, for staff as for customers; staff asking
  for a draft (or a case with nothing published) get 409 ``rfo_not_published``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.audit import service as audit
from caseapi.audit.enums import AuditAction
from caseapi.auth.principal import Principal
from caseapi.auth.tenancy import ensure_visible
from caseapi.cases import repository as case_repository
from caseapi.cases import store as case_store
from caseapi.cases.enums import CaseEventKind, CaseStatus
from caseapi.cases.models import Case
from caseapi.clock import Clock
from caseapi.core.database import session_scope
from caseapi.core.errors import CaseNotFoundError
from caseapi.customers.contacts import customer_zone
from caseapi.customers.models import Customer
from caseapi.ntus.models import NtuState
from caseapi.rfo import repository
from caseapi.rfo.errors import (
    RfoIncompleteError,
    RfoNotFoundError,
    RfoNotPublishedError,
    RfoPublishedError,
)
from caseapi.rfo.facts import build_facts
from caseapi.rfo.models import RfoVersion

#: The engineer's fields; all may be set on a draft.
EDITABLE_FIELDS: Final = (
    "root_cause_category",
    "root_cause",
    "corrective_actions",
    "preventive_actions",
    "preventive_not_applicable",
)
#: What a version needs before it can be published (preventive actions: see below).
REQUIRED_TO_PUBLISH: Final = ("root_cause_category", "root_cause", "corrective_actions")
#: How ``RfoIncompleteError`` names missing preventive actions.
PREVENTIVE_MISSING: Final = "preventive_actions (or preventive_not_applicable with the reason)"


def missing_to_publish(row: RfoVersion) -> list[str]:
    """The fields ``row`` still needs before publication (empty when complete).

    Preventive actions are required unless the engineer says why none apply.
    """

    def blank(name: str) -> bool:
        return not (getattr(row, name) or "").strip()

    missing = [name for name in REQUIRED_TO_PUBLISH if blank(name)]
    if blank("preventive_actions") and blank("preventive_not_applicable"):
        missing.append(PREVENTIVE_MISSING)
    return missing


#: Linked cases that get no RFO: withdrawn or folded into another case.
_NO_RFO: Final = frozenset({CaseStatus.CANCELLED, CaseStatus.MERGED})


@dataclass(frozen=True, slots=True)
class RfoView:
    """One RFO version as read: the row (``None`` for an unsaved preview) and its facts."""

    case_ref: str
    version: int
    row: RfoVersion | None
    facts: dict[str, Any]
    #: The customer's IANA zone the documents show times in (``None``: UTC).
    timezone: str | None = None

    @property
    def published(self) -> bool:
        return self.row is not None and self.row.published_at is not None


@dataclass(frozen=True, slots=True)
class PublishedRfo:
    """A published RFO version with the names its document shows."""

    view: RfoView
    customer_id: str | None
    customer_name: str | None


def apply_changes(
    row: RfoVersion, changes: Mapping[str, Any], *, at: datetime, actor: str, ref: str
) -> None:
    """Write the engineer's ``changes`` to a draft row.

    Raises:
        RfoPublishedError: ``row`` is published (published versions never change).
        ValueError: A field that is not editable.
    """
    if row.published_at is not None:
        raise RfoPublishedError(ref, row.version)
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
    for name, value in changes.items():
        setattr(row, name, value)
    row.updated_at = at
    row.updated_by = actor


class RfoService:
    """Drafts, publishes and serves the RFOs of cases."""

    def __init__(self, *, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        """Create the service.

        Args:
            sessionmaker: Session factory (``caseapi.core.database.make_sessionmaker``).
            clock: Source of "now" (edits, publication, the open end of an impact).
        """
        self._sessionmaker = sessionmaker
        self._clock = clock

    async def get_rfo(self, *, principal: Principal, ref: str, version: int | None) -> RfoView:
        """Return the RFO version the caller may read.

        Customers get the newest published version of their own case (``version``,
        if given, must be that one). Staff get ``version``, or the newest version,
        or an unsaved preview of version 1 when nothing was written yet.

        Raises:
            RfoNotFoundError: Nothing the caller may read (customers: also another
                customer's case or a missing case).
            CaseNotFoundError: Staff asking for a case that does not exist.
        """
        async with session_scope(self._sessionmaker) as session:
            case = await self._visible_case(session, principal, ref)
            if principal.is_customer:
                row = await repository.latest_version(session, case_id=case.id, published_only=True)
                if row is None or (version is not None and version != row.version):
                    raise RfoNotFoundError(ref, version)
            elif version is not None:
                row = await repository.get_version(session, case_id=case.id, version=version)
                if row is None:
                    raise RfoNotFoundError(ref, version)
            else:
                row = await repository.latest_version(session, case_id=case.id)
            return await self._view(session, case, row)

    async def get_published(
        self, *, principal: Principal, ref: str, version: int | None
    ) -> PublishedRfo:
        """Return a published RFO version (for its PDF) with the customer's name.

        Customers: as ``get_rfo``. Staff: ``version`` or else the newest published one.

        Raises:
            RfoNotFoundError: Nothing the caller may read, or no such version.
            RfoNotPublishedError: Staff asking for a draft version, or a case whose
                RFO has no published version yet.
            CaseNotFoundError: Staff asking for a case that does not exist.
        """
        async with session_scope(self._sessionmaker) as session:
            case = await self._visible_case(session, principal, ref)
            latest = await repository.latest_version(session, case_id=case.id, published_only=True)
            if version is None:
                row = latest
            else:
                row = await repository.get_version(session, case_id=case.id, version=version)
            if principal.is_customer:
                if latest is None or row is None or row.version != latest.version:
                    raise RfoNotFoundError(ref, version)
            elif version is not None and row is None:
                raise RfoNotFoundError(ref, version)
            if row is None or row.published_at is None:
                raise RfoNotPublishedError(ref, version)
            return await self._published(session, case, row)

    async def list_versions(self, *, principal: Principal, ref: str) -> list[RfoVersion]:
        """Every saved version of the RFO of ``ref``, newest first (customers: the
        published ones of their own case).

        Raises:
            RfoNotFoundError: A customer asking for another customer's case.
            CaseNotFoundError: Staff asking for a case that does not exist.
        """
        async with session_scope(self._sessionmaker) as session:
            case = await self._visible_case(session, principal, ref)
            rows = await repository.list_versions(session, case_id=case.id)
        if principal.is_customer:
            return [row for row in rows if row.published_at is not None]
        return rows

    async def published_for_customer(
        self, *, customer_id: str, ref: str, version: int
    ) -> PublishedRfo | None:
        """Published ``version`` of the RFO of ``ref`` if the case is ``customer_id``'s.

        For the ``rfo_published`` mail: ``None`` when there is nothing to attach (no
        such case, another customer's, or the version is not published).
        """
        async with session_scope(self._sessionmaker) as session:
            case = await case_repository.get_case_by_ref(session, ref=ref)
            if case is None or case.customer_id != customer_id:
                return None
            row = await repository.get_version(session, case_id=case.id, version=version)
            if row is None or row.published_at is None:
                return None
            return await self._published(session, case, row)

    async def _published(self, session: AsyncSession, case: Case, row: RfoVersion) -> PublishedRfo:
        customer = await session.get(Customer, case.customer_id) if case.customer_id else None
        return PublishedRfo(
            view=await self._view(session, case, row),
            customer_id=case.customer_id,
            customer_name=customer.name if customer else None,
        )

    async def update_draft(
        self, *, principal: Principal, ref: str, changes: Mapping[str, Any]
    ) -> RfoView:
        """Apply ``changes`` to the draft, starting a new version if the newest is published.

        Raises:
            CaseNotFoundError: No such case.
        """
        async with session_scope(self._sessionmaker, write=True) as session:
            case = await case_store.case_for(session, principal, ref, lock=True)
            now = self._clock.now()
            row = await repository.latest_version(session, case_id=case.id)
            if row is None or row.published_at is not None:
                row = await self._new_draft(session, case, row, at=now, actor=principal.actor)
            apply_changes(row, changes, at=now, actor=principal.actor, ref=ref)
            await session.flush()
            await audit.record(
                session,
                AuditAction.RFO_UPDATE,
                at=now,
                target_id=ref,
                customer_id=case.customer_id,
                details={"version": row.version, "changed": sorted(changes)},
            )
            view = await self._view(session, case, row)
            await session.commit()
            return view

    async def publish(self, *, principal: Principal, ref: str) -> RfoView:
        """Publish the draft: freeze it and make it visible to the customer.

        Raises:
            CaseNotFoundError: No such case.
            RfoIncompleteError: No draft, or a required field is empty.
            RfoPublishedError: The newest version is already published (edit to
                start a correction first).
        """
        async with session_scope(self._sessionmaker, write=True) as session:
            case = await case_store.case_for(session, principal, ref, lock=True)
            row = await repository.latest_version(session, case_id=case.id)
            if row is None:
                raise RfoIncompleteError(ref, [*REQUIRED_TO_PUBLISH, PREVENTIVE_MISSING])
            if row.published_at is not None:
                raise RfoPublishedError(ref, row.version)
            missing = missing_to_publish(row)
            if missing:
                raise RfoIncompleteError(ref, missing)
            now = self._clock.now()
            await self._publish_row(session, case, row, actor=principal.actor, now=now)
            linked = await self._linked_cases(session, case)
            for child in linked:
                await self._publish_linked(session, case, row, child, principal.actor, now)
            await audit.record(
                session,
                AuditAction.RFO_PUBLISH,
                at=now,
                target_id=ref,
                customer_id=case.customer_id,
                details={"version": row.version, "linked_cases": len(linked)},
            )
            view = await self._view(session, case, row)
            await session.commit()
            return view

    async def _publish_row(
        self,
        session: AsyncSession,
        case: Case,
        row: RfoVersion,
        *,
        actor: str,
        now: datetime,
        extra_facts: Mapping[str, Any] | None = None,
    ) -> None:
        """Freeze ``row`` with the facts of ``case`` and record the publication."""
        first = case.rfo_published_at is None
        events = await case_repository.list_events(session, case_id=case.id)
        probe = await self._ntu_state(session, case)
        row.facts = build_facts(case, events, now=now, probe=probe) | dict(extra_facts or {})
        row.published_at = now
        row.published_by = actor
        await session.flush()
        await case_store.mark_rfo_published(session, case_id=case.id, at=now, actor=actor)
        if not first:
            await case_store.record_event(
                session,
                case=case,
                at=now,
                kind=CaseEventKind.RFO_PUBLISHED,
                actor=actor,
                data={"version": row.version, "correction": True},
            )

    @staticmethod
    async def _linked_cases(session: AsyncSession, case: Case) -> list[Case]:
        """The customer cases linked to upstream incident ``case`` (none for others)."""
        linked = await case_repository.list_affected_customer_cases(session, incident=case)
        return [child for child in linked if child.status not in _NO_RFO]

    async def _publish_linked(
        self,
        session: AsyncSession,
        incident: Case,
        source: RfoVersion,
        child: Case,
        actor: str,
        now: datetime,
    ) -> None:
        locked = await case_repository.lock_case_by_id(session, case_id=child.id)
        assert locked is not None
        row = await repository.latest_version(session, case_id=locked.id)
        if row is None or row.published_at is not None:
            row = await self._new_draft(session, locked, row, at=now, actor=actor)
        text = {name: getattr(source, name) for name in EDITABLE_FIELDS}
        apply_changes(row, text, at=now, actor=actor, ref=locked.ref)
        extra = {"incident_ref": incident.ref, "incident_rfo_version": source.version}
        await self._publish_row(session, locked, row, actor=actor, now=now, extra_facts=extra)

    @staticmethod
    async def _ntu_state(session: AsyncSession, case: Case) -> NtuState | None:
        return None if case.ntu_id is None else await session.get(NtuState, case.ntu_id)

    async def _visible_case(self, session: AsyncSession, principal: Principal, ref: str) -> Case:
        case = await case_repository.get_case_by_ref(session, ref=ref)
        if principal.is_customer:
            # Customers learn nothing about cases that are not theirs.
            ensure_visible(principal, case.customer_id if case else None, RfoNotFoundError(ref))
        if case is None:
            raise CaseNotFoundError(ref)
        return case

    @staticmethod
    async def _new_draft(
        session: AsyncSession,
        case: Case,
        previous: RfoVersion | None,
        *,
        at: datetime,
        actor: str,
    ) -> RfoVersion:
        base = {name: getattr(previous, name) for name in EDITABLE_FIELDS} if previous else {}
        row = RfoVersion(
            case_id=case.id,
            version=previous.version + 1 if previous else 1,
            facts=None,
            created_at=at,
            created_by=actor,
            updated_at=at,
            updated_by=actor,
            published_at=None,
            published_by=None,
            **base,
        )
        return await repository.add_version(session, row=row)

    async def _view(self, session: AsyncSession, case: Case, row: RfoVersion | None) -> RfoView:
        if row is not None and row.facts is not None:
            facts = row.facts
        else:
            events = await case_repository.list_events(session, case_id=case.id)
            probe = await self._ntu_state(session, case)
            facts = build_facts(case, events, now=self._clock.now(), probe=probe)
        version = row.version if row is not None else 1
        customer = await session.get(Customer, case.customer_id) if case.customer_id else None
        return RfoView(
            case_ref=case.ref,
            version=version,
            row=row,
            facts=facts,
            timezone=customer_zone(customer),
        )
