"""SQL for cases and their timeline. Callers own the session and the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeAlias, TypeVar

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    and_,
    bindparam,
    exists,
    func,
    or_,
    select,
    true,
)
from sqlalchemy import case as when
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from caseapi.cases.enums import (
    TERMINAL_STATUSES,
    WORKING_STATUSES,
    CaseEventKind,
    CasePriority,
    CaseSeverity,
    CaseSource,
    CaseStatus,
    CaseType,
    EscalationLevel,
    NotificationKind,
)
from caseapi.cases.fulltext import text_search
from caseapi.cases.models import (
    Case,
    CaseCommitment,
    CaseEvent,
    CaseIdempotencyKey,
    CaseNotification,
    CaseRefCounter,
)
from caseapi.cases.search import Search
from caseapi.core.counters import next_in_year
from caseapi.ntus.models import NtuState

#: A filter value given only when the statement runs (``bindparam("name")``): a
#: statement built once then serves every reader and instant (the queue counts,
#: ``CountQuery``).
Bound: TypeAlias = BindParameter[Any]


@dataclass(frozen=True, slots=True)
class CaseFilters:
    """Filters for listing cases; ``None`` (or empty) means "any".

    A sequence matches any of its values; the filters combine with AND. The times
    are aware: ``created_since`` / ``updated_since`` inclusive, ``created_before``
    exclusive. ``search`` is full text (``caseapi.cases.fulltext``): internal
    comments count only with ``internal_text`` (staff). ``assignee`` and the times of
    the queue filters may be ``Bound``.
    """

    statuses: Sequence[CaseStatus] = ()
    priorities: Sequence[CasePriority] = ()
    ntu_id: str | None = None
    updated_since: datetime | None = None
    customer_id: str | None = None
    assignee: str | Bound | None = None
    #: The team working the case (staff only).
    team_id: str | None = None
    escalation_levels: Sequence[EscalationLevel] = ()
    types: Sequence[CaseType] = ()
    sources: Sequence[CaseSource] = ()
    created_since: datetime | None = None
    created_before: datetime | None = None
    severities: Sequence[CaseSeverity] = ()
    search: Search | None = None
    internal_text: bool = False
    #: Only cases not finished (closed, cancelled, merged excluded).
    open_only: bool = False
    #: Only cases nobody is assigned to.
    unassigned: bool = False
    #: Only cases still worked whose first response, repair time or a pending
    #: commitment falls due by this time without having been missed yet.
    sla_due_before: datetime | Bound | None = None
    #: Only open cases with a missed first response, repair time or commitment.
    sla_breached: bool = False
    #: Only solved cases whose monitoring window is still running at this time.
    monitoring_at: datetime | Bound | None = None
    #: Only cases above the first escalation level (L2, L3).
    escalated: bool = False


def _open() -> ColumnElement[bool]:
    return Case.status.not_in(sorted(TERMINAL_STATUSES))


async def get_open_case_by_dedup_key(session: AsyncSession, *, dedup_key: str) -> Case | None:
    """Return the one non-terminal case for ``dedup_key``, if any, locked for update.

    Its callers change it (detector open / restore): the row lock keeps the ticker and
    API transitions, which lock it too, from interleaving with them on PostgreSQL.
    """
    stmt = select(Case).where(Case.dedup_key == dedup_key, _open())
    return (await session.execute(_for_update(session, stmt))).scalar_one_or_none()


async def get_last_case_by_dedup_key(session: AsyncSession, *, dedup_key: str) -> Case | None:
    """Return the newest case for ``dedup_key`` in any status."""
    stmt = select(Case).where(Case.dedup_key == dedup_key).order_by(Case.id.desc()).limit(1)
    return (await session.execute(stmt)).scalar_one_or_none()


async def open_cases_by_dedup_key(
    session: AsyncSession, *, dedup_keys: Sequence[str]
) -> dict[str, Case]:
    """The non-terminal case of each of ``dedup_keys`` that has one, locked for update
    (in id order) as ``get_open_case_by_dedup_key`` locks one."""
    found: dict[str, Case] = {}
    for chunk in _chunks(sorted(set(dedup_keys))):
        stmt = select(Case).where(Case.dedup_key.in_(chunk), _open()).order_by(Case.id)
        for case in (await session.scalars(_for_update(session, stmt))).all():
            if case.dedup_key is not None:
                found[case.dedup_key] = case
    return found


async def last_cases_by_dedup_key(
    session: AsyncSession, *, dedup_keys: Sequence[str]
) -> dict[str, Case]:
    """The newest case of each of ``dedup_keys`` that has one, in any status."""
    found: dict[str, Case] = {}
    for chunk in _chunks(sorted(set(dedup_keys))):
        newest = select(func.max(Case.id)).where(Case.dedup_key.in_(chunk)).group_by(Case.dedup_key)
        for case in (await session.scalars(select(Case).where(Case.id.in_(newest)))).all():
            if case.dedup_key is not None:
                found[case.dedup_key] = case
    return found


def _chunks(values: Sequence[str], size: int = 500) -> list[Sequence[str]]:
    # Bounded IN lists: SQLite caps the bound parameters of one statement.
    return [values[i : i + size] for i in range(0, len(values), size)]


async def working_refs_by_dedup_key(session: AsyncSession, *, prefix: str) -> dict[str, str]:
    """Dedup key -> reference of every case still being worked whose key starts with ``prefix``."""
    stmt = select(Case.dedup_key, Case.ref).where(
        Case.status.in_(sorted(WORKING_STATUSES)),
        Case.dedup_key.startswith(prefix, autoescape=True),
    )
    return {key: ref for key, ref in (await session.execute(stmt)).all() if key is not None}


async def list_linked_cases(
    session: AsyncSession, *, parent_id: int, dedup_prefix: str | None = None
) -> list[Case]:
    """Return the cases linked to the upstream incident ``parent_id``, oldest first.

    ``dedup_prefix`` keeps only those whose dedup key starts with it (the affected
    customers' cases, not NTUs' own cases opened after the outage).
    """
    stmt = select(Case).where(Case.parent_case_id == parent_id)
    if dedup_prefix is not None:
        stmt = stmt.where(Case.dedup_key.startswith(dedup_prefix, autoescape=True))
    return list((await session.scalars(stmt.order_by(Case.id))).all())


async def list_affected_customer_cases(session: AsyncSession, *, incident: Case) -> list[Case]:
    """Return the customer cases of upstream incident ``incident``, oldest first.

    Empty for any other case. Only the affected customers' cases (dedup key
    ``<incident key>:customer:<id>``), not NTUs' own cases linked after the outage:
    what support tells the customers of an incident reaches these.
    """
    if incident.customer_id is not None or incident.dedup_key is None:
        return []
    if not incident.dedup_key.startswith("node:"):
        return []
    return await list_linked_cases(
        session, parent_id=incident.id, dedup_prefix=f"{incident.dedup_key}:customer:"
    )


# The API's hottest reads, built once: building a statement and its cache key costs
# more CPU than SQLite takes to answer it.
_REF_BY_ID: Final = select(Case.ref).where(Case.id == bindparam("case_id"))
_CASE_BY_REF: Final = select(Case).where(Case.ref == bindparam("ref"))
_CASE_BY_ID: Final = select(Case).where(Case.id == bindparam("case_id"))
_LINKED_REFS: Final = (
    select(Case.ref).where(Case.parent_case_id == bindparam("parent_id")).order_by(Case.id)
)
_COMMITMENTS: Final = (
    select(CaseCommitment)
    .where(CaseCommitment.case_id == bindparam("case_id"))
    .order_by(CaseCommitment.id)
)
_LATEST_OPEN_REF: Final = (
    select(Case.ref)
    .where(Case.ntu_id == bindparam("ntu_id"), _open())
    .order_by(Case.id.desc())
    .limit(1)
)


async def get_case_ref_by_id(session: AsyncSession, *, case_id: int) -> str | None:
    """Return the reference of case ``case_id``, if it exists."""
    return (await session.execute(_REF_BY_ID, {"case_id": case_id})).scalar()


async def list_linked_refs(session: AsyncSession, *, parent_id: int) -> list[str]:
    """Return the references of the cases linked to ``parent_id``, oldest first."""
    return list((await session.scalars(_LINKED_REFS, {"parent_id": parent_id})).all())


@dataclass(frozen=True, slots=True)
class CaseRead:
    """A case (``previous_case`` loaded) with its upstream incident's reference and
    whether it has commitments and linked cases, read by one statement."""

    case: Case
    parent_ref: str | None
    has_commitments: bool
    has_linked: bool


_Parent = aliased(Case)
_Linked = aliased(Case)
#: The case and what its detail shows beside it, in one statement: the parent's
#: reference, and whether the commitments and linked cases need reading at all
#: (most cases have neither, so a read of one case is usually this one statement).
_CASE_READ_BY_REF: Final = select(
    Case,
    select(_Parent.ref).where(_Parent.id == Case.parent_case_id).scalar_subquery(),
    exists().where(CaseCommitment.case_id == Case.id),
    exists().where(_Linked.parent_case_id == Case.id),
).where(Case.ref == bindparam("ref"))


async def read_case_by_ref(session: AsyncSession, *, ref: str) -> CaseRead | None:
    """Return case ``ref`` with what its detail needs to know of other rows."""
    row = (await session.execute(_CASE_READ_BY_REF, {"ref": ref})).one_or_none()
    if row is None:
        return None
    case, parent_ref, has_commitments, has_linked = row
    await with_previous_cases(session, [case])
    return CaseRead(case, parent_ref, bool(has_commitments), bool(has_linked))


async def get_case_by_ref(session: AsyncSession, *, ref: str) -> Case | None:
    """Return the case with reference ``ref`` (with ``previous_case`` loaded)."""
    case = (await session.execute(_CASE_BY_REF, {"ref": ref})).scalar_one_or_none()
    if case is not None:
        await with_previous_cases(session, [case])
    return case


async def with_previous_cases(session: AsyncSession, cases: Sequence[Case]) -> None:
    """Load ``previous_case`` of each of ``cases``, as ``selectinload`` would: one
    query for those that recur, none for the others (most: SQLAlchemy's loader costs
    more CPU than the API's read of one case).
    """
    wanted = {case.recurrence_of for case in cases if case.recurrence_of is not None}
    found: dict[int, Case] = {}
    if wanted:
        rows = await session.scalars(select(Case).where(Case.id.in_(sorted(wanted))))
        found = {row.id: row for row in rows}
    for case in cases:
        previous = found.get(case.recurrence_of) if case.recurrence_of is not None else None
        set_committed_value(case, "previous_case", previous)


async def latest_open_case_ref_for_ntu(session: AsyncSession, *, ntu_id: str) -> str | None:
    """Return the reference of the newest non-terminal case on ``ntu_id``, if any."""
    return (await session.execute(_LATEST_OPEN_REF, {"ntu_id": ntu_id})).scalar_one_or_none()


async def next_case_ref(session: AsyncSession, *, year: int) -> str:
    """Take the next reference for ``year``, e.g. ``CS-2026-000042``.

    Unique and gap-free under concurrency (``caseapi.core.counters``).
    """
    sequence = await next_in_year(session, CaseRefCounter, year=year)
    return format_case_ref(year=year, sequence=sequence)


async def next_case_refs(session: AsyncSession, *, year: int, count: int) -> list[str]:
    """Take the next ``count`` references for ``year`` at once, in order."""
    last = await next_in_year(session, CaseRefCounter, year=year, count=count)
    return [format_case_ref(year=year, sequence=n) for n in range(last - count + 1, last + 1)]


def format_case_ref(*, year: int, sequence: int) -> str:
    """Format a case reference; the sequence grows past six digits if it must."""
    return f"CS-{year:04d}-{sequence:06d}"


async def add_case(session: AsyncSession, *, case: Case) -> Case:
    """Insert ``case`` and flush, so its id is known (and the unique indexes checked)."""
    session.add(case)
    await session.flush()
    return case


async def add_event(
    session: AsyncSession,
    *,
    case: Case,
    at: datetime,
    kind: CaseEventKind,
    actor: str,
    data: dict[str, Any] | None = None,
) -> CaseEvent:
    """Append a timeline entry to ``case`` (and nothing else: ``store.record_event``
    also tells the customer what the entry implies)."""
    event = CaseEvent(case_id=case.id, at=at, kind=kind, actor=actor, data=data or {})
    session.add(event)
    await session.flush()
    return event


async def set_case_status(
    session: AsyncSession, *, case: Case, status: CaseStatus, at: datetime
) -> None:
    """Set ``case.status`` without any lifecycle rule (migrations, tests, admin tools).

    Records no timeline entry; callers that change a case on behalf of someone use
    the service instead.
    """
    case.status = status
    case.updated_at = at
    await session.flush()


def _severity(severity: CaseSeverity) -> ColumnElement[bool]:
    """The cases of ``severity`` (``CaseSeverity`` says how it derives)."""
    match severity:
        case CaseSeverity.OUTAGE:
            return and_(Case.type == CaseType.INCIDENT, Case.priority == CasePriority.P1)
        case CaseSeverity.DEGRADED:
            return and_(Case.type == CaseType.INCIDENT, Case.priority != CasePriority.P1)
        case CaseSeverity.REQUEST:
            return Case.type == CaseType.GENERAL_REQUEST


def _sla_due_before(horizon: datetime | Bound) -> ColumnElement[bool]:
    """A working case with a clock (or a promise) running out before ``horizon``."""
    # IN over an uncorrelated subquery: evaluated once, not once a case.
    commitment_due = Case.id.in_(
        select(CaseCommitment.case_id).where(
            CaseCommitment.met_at.is_(None),
            CaseCommitment.missed_at.is_(None),
            CaseCommitment.due_at <= horizon,
        )
    )
    return and_(
        Case.status.in_(sorted(WORKING_STATUSES)),
        or_(
            and_(
                Case.first_responded_at.is_(None),
                Case.first_response_breached_at.is_(None),
                Case.first_response_due_at <= horizon,
            ),
            and_(
                Case.ttr_breached_at.is_(None),
                Case.paused_at.is_(None),
                Case.ttr_due_at <= horizon,
            ),
            commitment_due,
        ),
    )


def _sla_breached() -> ColumnElement[bool]:
    """An open case with a missed SLA clock or a missed (and not since kept) promise."""
    commitment_missed = Case.id.in_(
        select(CaseCommitment.case_id).where(
            CaseCommitment.missed_at.is_not(None),
            CaseCommitment.met_at.is_(None),
        )
    )
    return and_(
        _open(),
        or_(
            Case.first_response_breached_at.is_not(None),
            Case.ttr_breached_at.is_not(None),
            commitment_missed,
        ),
    )


def _conditions(filters: CaseFilters, *, dialect: str) -> list[ColumnElement[bool]]:
    """The WHERE conditions of ``filters`` (ANDed)."""
    where: list[ColumnElement[bool]] = []
    stmt = _filtered(select(Case.id), filters, dialect=dialect)
    if stmt.whereclause is not None:
        where.append(stmt.whereclause)
    return where


def _filtered(stmt: Select[Any], filters: CaseFilters, *, dialect: str) -> Select[Any]:
    if filters.open_only:
        stmt = stmt.where(_open())
    if filters.unassigned:
        stmt = stmt.where(Case.assignee.is_(None))
    if filters.sla_due_before is not None:
        stmt = stmt.where(_sla_due_before(filters.sla_due_before))
    if filters.sla_breached:
        stmt = stmt.where(_sla_breached())
    if filters.monitoring_at is not None:
        stmt = stmt.where(
            Case.status == CaseStatus.SOLVED, Case.monitoring_until > filters.monitoring_at
        )
    if filters.escalated:
        stmt = stmt.where(Case.escalation_level != EscalationLevel.L1)
    if filters.statuses:
        stmt = stmt.where(Case.status.in_(list(filters.statuses)))
    if filters.priorities:
        stmt = stmt.where(Case.priority.in_(list(filters.priorities)))
    if filters.ntu_id is not None:
        stmt = stmt.where(Case.ntu_id == filters.ntu_id)
    if filters.updated_since is not None:
        stmt = stmt.where(Case.updated_at >= filters.updated_since)
    if filters.customer_id is not None:
        stmt = stmt.where(Case.customer_id == filters.customer_id)
    if filters.assignee is not None:
        stmt = stmt.where(Case.assignee == filters.assignee)
    if filters.team_id is not None:
        stmt = stmt.where(Case.team_id == filters.team_id)
    if filters.escalation_levels:
        stmt = stmt.where(Case.escalation_level.in_(list(filters.escalation_levels)))
    if filters.types:
        stmt = stmt.where(Case.type.in_(list(filters.types)))
    if filters.sources:
        stmt = stmt.where(Case.source.in_(list(filters.sources)))
    if filters.created_since is not None:
        stmt = stmt.where(Case.created_at >= filters.created_since)
    if filters.created_before is not None:
        stmt = stmt.where(Case.created_at < filters.created_before)
    if filters.severities:
        stmt = stmt.where(or_(*(_severity(s) for s in sorted(set(filters.severities)))))
    if filters.search is not None:
        search = text_search(dialect)
        # One customer's cases are few: the search may check them one by one.
        narrow = filters.customer_id is not None
        matching = search.matching(filters.search, internal=filters.internal_text, narrow=narrow)
        stmt = stmt.where(matching)
    return stmt


#: A listing's and a count's statements before their filters (statements are
#: immutable: each request's filters make new ones from these without rebuilding
#: what every listing shares).
_CASES: Final = select(Case)
_COUNT_CASES: Final = select(func.count()).select_from(Case)
_NEWEST_FIRST: Final = Case.id.desc()


async def list_cases(
    session: AsyncSession, *, filters: CaseFilters, before_id: int | None, limit: int
) -> list[Case]:
    """Return up to ``limit`` cases matching ``filters``, newest (highest id) first.

    ``before_id`` is the keyset position: only cases with a smaller id are returned.
    """
    dialect = session.get_bind().dialect.name
    stmt = _filtered(_CASES, filters, dialect=dialect)
    if before_id is not None:
        stmt = stmt.where(Case.id < before_id)
    stmt = stmt.order_by(_NEWEST_FIRST).limit(bindparam("limit"))
    cases = list((await session.execute(stmt, {"limit": limit})).scalars())
    await with_previous_cases(session, cases)
    return cases


async def list_cases_counted(
    session: AsyncSession, *, filters: CaseFilters, before_id: int | None, limit: int
) -> tuple[list[Case], int | None]:
    """``list_cases`` and ``count_cases`` in one statement: the count rides on every
    row as an uncorrelated scalar subquery (run once by either database). No row, no
    count: ``None`` then (``count_cases`` tells).
    """
    dialect = session.get_bind().dialect.name
    total = _filtered(_COUNT_CASES, filters, dialect=dialect).scalar_subquery().correlate(None)
    stmt = _filtered(select(Case, total), filters, dialect=dialect)
    if before_id is not None:
        stmt = stmt.where(Case.id < before_id)
    stmt = stmt.order_by(_NEWEST_FIRST).limit(bindparam("limit"))
    rows = (await session.execute(stmt, {"limit": limit})).all()
    cases = [row[0] for row in rows]
    await with_previous_cases(session, cases)
    return cases, (int(rows[0][1]) if rows else None)


async def count_cases(session: AsyncSession, *, filters: CaseFilters) -> int:
    """Count all cases matching ``filters`` (every page, not one)."""
    dialect = session.get_bind().dialect.name
    stmt = _filtered(_COUNT_CASES, filters, dialect=dialect)
    return int((await session.execute(stmt)).scalar_one())


@dataclass(frozen=True, slots=True)
class CountQuery:
    """Named counts in one statement (``count_query``): built once, run many times
    (``run_counts``) with the values of its ``Bound`` filters."""

    names: tuple[str, ...]
    statement: Select[Any]


def count_query(
    named: dict[str, CaseFilters], *, within: CaseFilters | None = None, dialect: str
) -> CountQuery:
    """Count the cases matching each of ``named``'s filters, in one pass over the cases.

    A ``SUM(CASE WHEN ...)`` per name, over the cases matching ``within`` only (every
    case when omitted): a set every one of ``named`` lies in, which an index finds
    (the open cases, by status), keeps the pass short.
    """
    columns = []
    for name, filters in named.items():
        where = _conditions(filters, dialect=dialect)
        matched = and_(*where) if where else true()
        columns.append(func.coalesce(func.sum(when((matched, 1), else_=0)), 0).label(name))
    stmt = select(*columns).select_from(Case)
    if within is not None:
        stmt = _filtered(stmt, within, dialect=dialect)
    return CountQuery(names=tuple(named), statement=stmt)


async def run_counts(
    session: AsyncSession, query: CountQuery, params: dict[str, Any] | None = None
) -> dict[str, int]:
    """Run ``query`` with ``params`` (its ``Bound`` values by name): name -> count."""
    if not query.names:
        return {}
    row = (await session.execute(query.statement, params or {})).one()
    return {name: int(row[index]) for index, name in enumerate(query.names)}


#: How a queue page may be ordered: name -> ORDER BY (the id breaks ties).
QUEUE_ORDERS: Final[dict[str, tuple[Any, ...]]] = {
    "newest": (Case.id.desc(),),
    "oldest": (Case.id.asc(),),
    "priority": (Case.priority.asc(), Case.id.desc()),
    "updated": (Case.updated_at.desc(), Case.id.desc()),
    # Cases without a deadline last on both backends (NULLS LAST is not portable).
    "due": (Case.next_due_at.is_(None), Case.next_due_at.asc(), Case.id.desc()),
}


async def list_sorted(
    session: AsyncSession, *, filters: CaseFilters, order: str, offset: int, limit: int
) -> tuple[list[Case], int]:
    """Up to ``limit`` cases matching ``filters`` in ``order`` (``QUEUE_ORDERS``),
    skipping ``offset``, and how many match in all: the console's sortable queue
    pages."""
    dialect = session.get_bind().dialect.name
    where = _conditions(filters, dialect=dialect)
    stmt = select(Case).where(*where).order_by(*QUEUE_ORDERS[order]).offset(offset).limit(limit)
    cases = list((await session.execute(stmt)).scalars())
    if offset == 0 and len(cases) < limit:
        return cases, len(cases)  # all of them: no need to count
    total = (await session.execute(select(func.count()).select_from(Case).where(*where))).scalar()
    return cases, int(total or 0)


async def pending_commitments(
    session: AsyncSession, *, case_ids: Sequence[int]
) -> list[CaseCommitment]:
    """The commitments of ``case_ids`` neither met nor missed, by due time (one query)."""
    if not case_ids:
        return []
    stmt = (
        select(CaseCommitment)
        .where(
            CaseCommitment.case_id.in_(list(case_ids)),
            CaseCommitment.met_at.is_(None),
            CaseCommitment.missed_at.is_(None),
        )
        .order_by(CaseCommitment.due_at)
    )
    return list((await session.execute(stmt)).scalars())


async def list_events(session: AsyncSession, *, case_id: int) -> list[CaseEvent]:
    """Return the timeline of one case, oldest first."""
    stmt = select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
    return list((await session.execute(stmt)).scalars())


_Row = TypeVar("_Row")


def _for_update(
    session: AsyncSession, stmt: Select[_Row], *, skip_locked: bool = False
) -> Select[_Row]:
    # SQLite has no row locks: writers hold the database lock (BEGIN IMMEDIATE).
    if session.get_bind().dialect.name == "postgresql":
        return stmt.with_for_update(skip_locked=skip_locked)
    return stmt


async def lock_case_by_ref(session: AsyncSession, *, ref: str) -> Case | None:
    """Return case ``ref`` locked for update until the transaction ends."""
    stmt = select(Case).where(Case.ref == ref)
    return (await session.execute(_for_update(session, stmt))).scalar_one_or_none()


async def lock_case_by_id(session: AsyncSession, *, case_id: int) -> Case | None:
    """Return case ``case_id`` locked for update until the transaction ends."""
    stmt = select(Case).where(Case.id == case_id)
    return (await session.execute(_for_update(session, stmt))).scalar_one_or_none()


async def claim_due_cases(session: AsyncSession, *, now: datetime, limit: int) -> list[Case]:
    """Lock up to ``limit`` cases whose ``next_due_at`` has come, oldest deadline first.

    On PostgreSQL rows another ticker holds are skipped (``SKIP LOCKED``), so two
    tickers share the work instead of doing it twice.
    """
    stmt = (
        select(Case)
        .where(Case.next_due_at.is_not(None), Case.next_due_at <= now)
        .order_by(Case.next_due_at, Case.id)
        .limit(limit)
    )
    return list((await session.execute(_for_update(session, stmt, skip_locked=True))).scalars())


async def list_commitments(session: AsyncSession, *, case_id: int) -> list[CaseCommitment]:
    """Return the commitments of one case, oldest first."""
    return list((await session.execute(_COMMITMENTS, {"case_id": case_id})).scalars())


async def commitments_by_case(
    session: AsyncSession, *, case_ids: Sequence[int]
) -> dict[int, list[CaseCommitment]]:
    """The commitments of each of ``case_ids`` that has any, oldest first (one query
    per 500 cases)."""
    wanted = sorted(set(case_ids))
    found: dict[int, list[CaseCommitment]] = {}
    for start in range(0, len(wanted), 500):
        stmt = (
            select(CaseCommitment)
            .where(CaseCommitment.case_id.in_(wanted[start : start + 500]))
            .order_by(CaseCommitment.id)
        )
        for row in (await session.scalars(stmt)).all():
            found.setdefault(row.case_id, []).append(row)
    return found


async def add_notification(
    session: AsyncSession,
    *,
    case: Case,
    kind: NotificationKind,
    at: datetime,
    data: dict[str, Any],
) -> CaseNotification:
    """Record a notification in the outbox for the dispatcher."""
    row = CaseNotification(case_id=case.id, kind=kind, created_at=at, data=data)
    session.add(row)
    await session.flush()
    return row


async def list_notifications(session: AsyncSession, *, case_id: int) -> list[CaseNotification]:
    """Return the outbox rows of one case, oldest first."""
    stmt = (
        select(CaseNotification)
        .where(CaseNotification.case_id == case_id)
        .order_by(CaseNotification.id)
    )
    return list((await session.execute(stmt)).scalars())


async def get_idempotency_key(
    session: AsyncSession, *, scope: str, key: str
) -> CaseIdempotencyKey | None:
    """Return the record of ``key`` used by ``scope``, if any."""
    return await session.get(CaseIdempotencyKey, (scope, key))


async def add_idempotency_key(
    session: AsyncSession, *, scope: str, key: str, request_hash: str, case: Case, at: datetime
) -> None:
    """Remember that ``scope`` created ``case`` with ``key`` (flushes: a race raises here)."""
    session.add(
        CaseIdempotencyKey(
            scope=scope, key=key, request_hash=request_hash, case_id=case.id, created_at=at
        )
    )
    await session.flush()


async def get_case_by_id(session: AsyncSession, *, case_id: int) -> Case | None:
    """Return the case with primary key ``case_id`` (with ``previous_case`` loaded)."""
    case = (await session.execute(_CASE_BY_ID, {"case_id": case_id})).scalar_one_or_none()
    if case is not None:
        await with_previous_cases(session, [case])
    return case


async def ntu_status(session: AsyncSession, *, ntu_id: str) -> str | None:
    """The detector's status of ``ntu_id`` (``None``: never judged)."""
    stmt = select(NtuState.status).where(NtuState.ntu_id == ntu_id)
    return (await session.execute(stmt)).scalar_one_or_none()
