"""The estimated time of restoration (ETR) support gives the customer of an incident.

Mixed into ``CaseService``. The rules are the lifecycle's (``SetEtr`` in
``caseapi.cases.lifecycle``): only an incident still being worked takes one, it is
in the future, and setting it is an update to the customer (first response, promised
updates met); the ``etr_set`` timeline entry tells the customer
(``caseapi.cases.notices``).

Customers never see an upstream incident (no customer of its own), so an ETR set on
one is set, in the same transaction, on each of its linked customer cases still
being worked, each with its own entry (``data["from_parent"]`` names the incident)
and its own notification.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseapi.auth.principal import Principal
from caseapi.cases import audit as case_audit
from caseapi.cases import repository, store
from caseapi.cases.enums import WORKING_STATUSES
from caseapi.cases.errors import PreconditionFailedError
from caseapi.cases.models import Case
from caseapi.cases.sla import SlaSettings
from caseapi.cases.snapshot import SetEtr
from caseapi.clock import Clock
from caseapi.core.database import session_scope


class EtrActions:
    """Setting the ETR; needs ``_sessionmaker``, ``_clock`` and ``_sla``."""

    _sessionmaker: async_sessionmaker[AsyncSession]
    _clock: Clock
    _sla: SlaSettings

    async def set_etr(
        self,
        principal: Principal,
        ref: str,
        *,
        etr: datetime | None,
        note: str = "",
        if_match: int | None = None,
    ) -> Case:
        """Set (or with ``None`` clear) the ETR of case ``ref`` and of its linked cases.

        Raises:
            CaseNotFoundError: No such case, or another customer's.
            PreconditionFailedError: ``if_match`` is not the current version.
            EtrNotAllowedError: A general request, or a case no longer being worked.
            CaseValidationError: ``etr`` is not in the future (names ``etr``).
        """
        now = self._clock.now()
        async with session_scope(self._sessionmaker, write=True) as session:
            case = await store.case_for(session, principal, ref, lock=True)
            PreconditionFailedError.check(current=case.version, if_match=if_match)
            event = SetEtr(etr=etr, note=note, actor=principal.actor)
            before = case_audit.values_of(case)
            outcome = await store.apply_request(
                session, case, event, now=now, sla=self._sla, field="etr"
            )
            linked = await self._linked(session, case)
            for child in linked:
                child_event = _from_parent(event, case.ref)
                await store.apply_request(
                    session, child, child_event, now=now, sla=self._sla, field="etr"
                )
            await case_audit.record_request(
                session,
                principal,
                case,
                event,
                before=before,
                outcome=outcome,
                at=now,
                linked=len(linked),
            )
            await session.commit()
            case_id = case.id
        async with session_scope(self._sessionmaker) as session:
            fresh = await repository.get_case_by_id(session, case_id=case_id)
        assert fresh is not None
        return fresh

    async def _linked(self, session: AsyncSession, case: Case) -> list[Case]:
        """The customer cases of upstream incident ``case`` still being worked, locked."""
        linked = await repository.list_affected_customer_cases(session, incident=case)
        locked = []
        for child in linked:
            row = await repository.lock_case_by_id(session, case_id=child.id)
            if row is not None and row.status in WORKING_STATUSES:
                locked.append(row)
        return locked


def _from_parent(event: SetEtr, parent_ref: str) -> SetEtr:
    return SetEtr(etr=event.etr, note=event.note, actor=event.actor, from_parent=parent_ref)
