"""Full-text search of cases: one interface, an SQLite FTS5 and a PostgreSQL implementation.

``text_search(dialect)`` gives the ``TextSearch`` of a backend; its ``matching``
returns a condition on ``cases`` for ``caseapi.cases.repository`` to AND with the
other filters, so search keeps the listing's order, pagination and count. A case
matches when each term of the search (``caseapi.cases.search``) is found in its
reference, summary and description, or in one of its comments that the caller may
read (public ones only, unless ``internal`` is set for staff).

Per term, both ask ``cases.id IN (cases whose text matches UNION cases with a
matching comment)``: each side is answered from its own full-text index, which an
``OR`` across the two tables would not allow. PostgreSQL asks a narrow listing (one
customer's cases) per case instead: ``own vector matches OR EXISTS (a comment of
this case matches)``.

Bench (``bench/case_search.py``, PostgreSQL, 100,000 cases, 200,000 comments, a
loaded 2-core machine), one page and its count: one customer 5-20 ms; staff with
rare words 10-50 ms, with words in a third of the cases about 100-250 ms, with a
word in every case about 550 ms (the count reads every match).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Protocol

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    and_,
    bindparam,
    column,
    exists,
    func,
    literal_column,
    or_,
    select,
    table,
    text,
    union,
)

from caseapi.cases.models import Case
from caseapi.cases.search import Search, Term, render_fts5, render_tsquery
from caseapi.comments.models import Comment, Visibility
from caseapi.core.fulltext import PG_CONFIG, PG_VECTOR


class TextSearch(Protocol):
    """Turns a parsed search into a condition on ``cases``."""

    def matching(self, search: Search, *, internal: bool, narrow: bool) -> ColumnElement[bool]:
        """The cases ``search`` finds.

        Args:
            search: What to find.
            internal: Internal comments count too (staff).
            narrow: The other filters keep few cases (one customer's): checking those
                cases one by one may beat collecting every match. A hint.
        """
        ...


def _every_term(
    search: Search, term_matching: Callable[[Term], ColumnElement[bool]]
) -> ColumnElement[bool]:
    return and_(*(term_matching(term) for term in search.terms))


def _visibilities(internal: bool) -> list[str]:
    if internal:
        return [Visibility.PUBLIC.value, Visibility.INTERNAL.value]
    return [Visibility.PUBLIC.value]


_CASES_FTS: Final = table("cases_fts", column("rowid"))
_COMMENTS_FTS: Final = table("comments_fts", column("rowid"))
# The generated columns are not mapped (``caseapi.core.fulltext`` says why).
_PG_CASES: Final = table("cases", column("id"), column(PG_VECTOR))
_PG_COMMENTS: Final = table("comments", column("case_id"), column("visibility"), column(PG_VECTOR))


class Fts5Search:
    """SQLite: the FTS5 tables ``cases_fts`` and ``comments_fts`` (migration 0013).

    Always collects the matches from the FTS5 indexes (``narrow`` is not used: FTS5
    answers a MATCH for one row no faster than for all).
    """

    def matching(self, search: Search, *, internal: bool, narrow: bool) -> ColumnElement[bool]:
        """The cases ``search`` finds; ``internal``: internal comments count too."""
        return _every_term(search, lambda term: self._term(term, internal=internal))

    def _term(self, term: Term, *, internal: bool) -> ColumnElement[bool]:
        query: BindParameter[str] = bindparam("q", render_fts5(term), unique=True)
        # ``<table> MATCH`` searches every column of the FTS5 table.
        in_cases: Select[Any] = select(_CASES_FTS.c.rowid).where(
            literal_column("cases_fts").op("MATCH")(query)
        )
        in_comments: Select[Any] = (
            select(Comment.case_id)
            .join(_COMMENTS_FTS, _COMMENTS_FTS.c.rowid == Comment.id)
            .where(
                literal_column("comments_fts").op("MATCH")(query),
                Comment.visibility.in_(_visibilities(internal)),
            )
        )
        return Case.id.in_(union(in_cases, in_comments))


class PostgresSearch:
    """PostgreSQL: generated ``tsvector`` columns with GIN indexes (migration 0013).

    Broad listings collect each term's matches from both GIN indexes. Narrow ones
    (one customer's cases) test each of their cases' stored vector and look its
    comments up by case: at 100,000 cases that is milliseconds where collecting
    the matches of a common word for everyone costs hundreds.
    """

    def matching(self, search: Search, *, internal: bool, narrow: bool) -> ColumnElement[bool]:
        """The cases ``search`` finds; ``internal``: internal comments count too."""
        term = self._per_case if narrow else self._collected
        return _every_term(search, lambda t: term(_tsquery(t), internal=internal))

    @staticmethod
    def _collected(query: ColumnElement[Any], *, internal: bool) -> ColumnElement[bool]:
        in_cases: Select[Any] = select(_PG_CASES.c.id).where(
            _PG_CASES.c[PG_VECTOR].bool_op("@@")(query)
        )
        in_comments: Select[Any] = select(_PG_COMMENTS.c.case_id).where(
            _PG_COMMENTS.c[PG_VECTOR].bool_op("@@")(query),
            _PG_COMMENTS.c.visibility.in_(_visibilities(internal)),
        )
        return Case.id.in_(union(in_cases, in_comments))

    @staticmethod
    def _per_case(query: ColumnElement[Any], *, internal: bool) -> ColumnElement[bool]:
        # ``cases`` of the enclosing query: not the lightweight table, which would
        # add ``cases`` to its FROM a second time.
        own = literal_column(f"cases.{PG_VECTOR}").bool_op("@@")(query)
        in_comment = exists().where(
            _PG_COMMENTS.c.case_id == Case.id,
            _PG_COMMENTS.c[PG_VECTOR].bool_op("@@")(query),
            _PG_COMMENTS.c.visibility.in_(_visibilities(internal)),
        )
        return or_(own, in_comment)


def _tsquery(term: Term) -> ColumnElement[Any]:
    # The configuration as a literal (a bound parameter would have to be a regconfig).
    config = text(f"'{PG_CONFIG}'")
    return func.to_tsquery(config, bindparam("q", render_tsquery(term), unique=True))


_SEARCHES: Final[dict[str, TextSearch]] = {"sqlite": Fts5Search(), "postgresql": PostgresSearch()}


def text_search(dialect: str) -> TextSearch:
    """The full-text search of the ``dialect`` (``sqlite`` or ``postgresql``)."""
    try:
        return _SEARCHES[dialect]
    except KeyError:
        raise ValueError(f"no full-text search for database dialect {dialect!r}") from None
