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
- Customers read only the newest published version of their own cases; anything
  else answers 404 ``rfo_not_found``. Staff read any version, or the draft.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.auth.principal import Principal
from caseapi.auth.tenancy import ensure_visible
from caseapi.cases import repository as case_repository
from caseapi.cases import store as case_store
from caseapi.cases.enums import CaseEventKind
from caseapi.cases.models import Case
from caseapi.clock import Clock
from caseapi.core.database import session_scope
from caseapi.core.errors import CaseNotFoundError
from caseapi.rfo import repository
from caseapi.rfo.errors import RfoIncompleteError, RfoNotFoundError, RfoPublishedError
from caseapi.rfo.facts import build_facts
from caseapi.rfo.models import RfoVersion

#: The engineer's fields; all four may be set on a draft.
EDITABLE_FIELDS: Final = (
    "root_cause_category",
    "root_cause",
    "corrective_actions",
    "preventive_actions",
)
#: What a version needs before it can be published.
REQUIRED_TO_PUBLISH: Final = ("root_cause_category", "root_cause", "corrective_actions")


@dataclass(frozen=True, slots=True)
class RfoView:
    """One RFO version as read: the row (``None`` for an unsaved preview) and its facts."""

    case_ref: str
    version: int
    row: RfoVersion | None
    facts: dict[str, Any]

    @property
    def published(self) -> bool:
        return self.row is not None and self.row.published_at is not None


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
                raise RfoIncompleteError(ref, list(REQUIRED_TO_PUBLISH))
            if row.published_at is not None:
                raise RfoPublishedError(ref, row.version)
            missing = [
                name for name in REQUIRED_TO_PUBLISH if not (getattr(row, name) or "").strip()
            ]
            if missing:
                raise RfoIncompleteError(ref, missing)
            now = self._clock.now()
            first = case.rfo_published_at is None
            events = await case_repository.list_events(session, case_id=case.id)
            row.facts = build_facts(case, events, now=now)
            row.published_at = now
            row.published_by = principal.actor
            await session.flush()
            await case_store.mark_rfo_published(
                session, case_id=case.id, at=now, actor=principal.actor
            )
            if not first:
                await case_store.record_event(
                    session,
                    case=case,
                    at=now,
                    kind=CaseEventKind.RFO_PUBLISHED,
                    actor=principal.actor,
                    data={"version": row.version, "correction": True},
                )
            view = await self._view(session, case, row)
            await session.commit()
            return view

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
            facts = build_facts(case, events, now=self._clock.now())
        version = row.version if row is not None else 1
        return RfoView(case_ref=case.ref, version=version, row=row, facts=facts)
