"""``GET /v1/cases?q=``: full-text search on SQLite (FTS5) and PostgreSQL, and ``severity``.

A small corpus of cases and comments for two customers; each search states which
cases staff, cust-1 (``acme``) and cust-2 (``other``) get. A match that lives only
in an internal comment finds the case for staff and never for a customer, and a
customer never gets another customer's case, whatever its text.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
from dataclasses import dataclass
from typing import Any, Final

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, select, text
from sqlalchemy.engine import make_url

from caseapi.cases import repository
from caseapi.cases.models import Case
from caseapi.cases.repository import CaseFilters
from caseapi.cases.search import (
    MAX_SEARCH_LENGTH,
    MAX_SEARCH_TERMS,
    Search,
    SearchSyntaxError,
    parse_search,
    render_fts5,
    render_tsquery,
)
from caseapi.core.database import alembic_config
from tests.caseapi.auth_fixtures import problem
from tests.caseapi.conftest import PG_ADMIN_URL, Database
from tests.caseapi.test_case_filters import Params, walk
from tests.conftest import require

#: name -> (customer, type, priority, summary, description)
CASES: Final = {
    "fibre": (
        "cust-1",
        "incident",
        "P1",
        "Fibre cut near Zürich depot",
        "The access circuit went dark after roadworks.",
    ),
    "loss": ("cust-1", "incident", "P2", "Intermittent packet loss", "Peaks at 14:00 on the WAN."),
    "geneva": (
        "cust-2",
        "incident",
        "P1",
        "Router down at Geneva office",
        "No power at the rack; the Openreach fibre is fine.",
    ),
    "dispatch": ("cust-1", "general_request", "P3", "Dispatch a router swap", None),
    "rfo": ("cust-2", "general_request", "P3", "RFO for the Geneva outage", None),
    "reboots": ("cust-1", "incident", "P2", "Router reboots nightly", "Uptime resets at 02:00."),
}
#: (case, visibility, body)
COMMENTS: Final = [
    ("fibre", "public", "Engineer dispatched with a splicing kit."),
    ("fibre", "internal", "Supplier ticket raised with Openreach; blame the contractor."),
    ("loss", "internal", "Suspect the contractor's patch panel."),
    ("geneva", "public", "Power restored by the landlord."),
]
OWN: Final = {
    "staff": set(CASES),
    "acme": {name for name, case in CASES.items() if case[0] == "cust-1"},
    "other": {name for name, case in CASES.items() if case[0] == "cust-2"},
}
#: q -> the cases staff find (customers: those of them that are theirs, unless listed).
SEARCHES: Final[dict[str, set[str]]] = {
    "roadworks": {"fibre"},  # description
    "packet": {"loss"},  # summary
    "splicing": {"fibre"},  # public comment
    "landlord": {"geneva"},  # public comment, cust-2
    "splic": {"fibre"},  # the last word is a prefix
    "ROAD": {"fibre"},
    "zürich": {"fibre"},
    "ZÜRICH DEPOT": {"fibre"},
    "fibre": {"fibre", "geneva"},
    "fibre depot": {"fibre"},  # every word must match
    "fibre landlord": {"geneva"},  # ... in the case's text or its comments
    "router": {"geneva", "dispatch", "reboots"},
    "geneva": {"geneva", "rfo"},
    "dispatch": {"fibre", "dispatch"},  # "dispatched" by prefix
    "dispatch ": {"dispatch"},  # a trailing space ends the prefix
    "14:00": {"loss"},
    "02:0": {"reboots"},
    "nothing matches this": set(),
}
#: Matches only in internal comments: staff only.
INTERNAL: Final[dict[str, set[str]]] = {
    "contractor": {"fibre", "loss"},
    "openreach": {"fibre", "geneva"},  # geneva has it in its description
}


@dataclass(frozen=True)
class Corpus:
    refs: dict[str, str]
    #: Every case name, newest first (the listing's order).
    order: list[str]

    def expect(self, names: set[str]) -> list[str]:
        return [self.refs[name] for name in self.order if name in names]


@pytest.fixture
async def corpus(staff: httpx.AsyncClient) -> Corpus:
    refs: dict[str, str] = {}
    for name, (customer, type_, priority, summary, description) in CASES.items():
        body: dict[str, Any] = {"type": type_, "summary": summary, "customer_id": customer}
        if type_ == "incident":
            body["priority"] = priority
        else:
            body["subject"] = "information_request"
        if description is not None:
            body["description"] = description
        created = await staff.post("/v1/cases", json=body)
        assert created.status_code == 201, created.text
        refs[name] = created.json()["ref"]
    for name, visibility, comment in COMMENTS:
        added = await staff.post(
            f"/v1/cases/{refs[name]}/comments", json={"body": comment, "visibility": visibility}
        )
        assert added.status_code == 201, added.text
    moved = await staff.post(f"/v1/cases/{refs['reboots']}/transitions", json={"to": "in_progress"})
    assert moved.status_code == 200, moved.text
    return Corpus(refs=refs, order=list(reversed(CASES)))


async def found(client: httpx.AsyncClient, params: dict[str, Any]) -> list[str]:
    response = await client.get("/v1/cases", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    body = response.json()
    refs = [case["ref"] for case in body["data"]]
    assert body["count"] == len(refs)
    return refs


async def test_search_by_text_and_comments_within_each_callers_cases(
    staff: httpx.AsyncClient, acme: httpx.AsyncClient, other: httpx.AsyncClient, corpus: Corpus
) -> None:
    clients = {"staff": staff, "acme": acme, "other": other}
    for q, names in SEARCHES.items():
        for who, client in clients.items():
            assert await found(client, {"q": q}) == corpus.expect(names & OWN[who]), (q, who)
    assert any(names & OWN["acme"] and names & OWN["other"] for names in SEARCHES.values())


async def test_an_internal_comment_finds_the_case_for_staff_only(
    staff: httpx.AsyncClient, acme: httpx.AsyncClient, other: httpx.AsyncClient, corpus: Corpus
) -> None:
    for q, names in INTERNAL.items():
        assert await found(staff, {"q": q}) == corpus.expect(names)
    # The customer's own case holds the word only internally: not returned at all.
    assert await found(acme, {"q": "contractor"}) == []
    assert await found(acme, {"q": "contract"}) == []
    assert await found(acme, {"q": "openreach"}) == []
    assert await found(acme, {"q": "contractor", "status": "new"}) == []
    # cust-2's case has it in its own description.
    assert await found(other, {"q": "openreach"}) == [corpus.refs["geneva"]]
    # The words around the internal one in the same comment do not leak either.
    assert await found(acme, {"q": "supplier ticket"}) == []


async def test_a_reference_is_found_exactly_and_by_prefix(
    staff: httpx.AsyncClient, acme: httpx.AsyncClient, other: httpx.AsyncClient, corpus: Corpus
) -> None:
    ref = corpus.refs["loss"]
    for q in (ref, ref.lower(), f" {ref} ", f'"{ref}"', f"packet {ref}"):
        assert await found(staff, {"q": q}) == [ref], q
        assert await found(acme, {"q": q}) == [ref], q
        assert await found(other, {"q": q}) == [], q
    # Its tokens apart (not in a row) are not the reference.
    year, sequence = ref.split("-")[1:]
    assert await found(staff, {"q": f"{sequence} {year}-CS"}) == []
    # A reference typed so far is a prefix of every reference it begins.
    assert await found(staff, {"q": ref[:-1]}) == corpus.expect(OWN["staff"])
    assert await found(other, {"q": ref[:-1]}) == corpus.expect(OWN["other"])


#: What the query syntaxes of FTS5 and tsquery give meaning.
_SYNTAX = st.sampled_from(list("\"'*():&|!<>-^+~{}[],.;_\\%@#/= \t\n"))
_OPERATORS = st.sampled_from(["NEAR", "AND", "OR", "NOT", "NEAR(", "a:*", "<->", "''", "\\'"])
#: Letters and digits of scripts without combining marks, where every tokeniser
#: agrees on what a word is. (Elsewhere, e.g. Devanagari vowel signs, glibc's
#: alnum on PostgreSQL and SQLite's unicode61 split words differently.)
_LETTERS = st.characters(categories=["Lu", "Ll", "Nd"], max_codepoint=0x4FF) | st.sampled_from(
    list("日本語中文")
)
#: Search-box text that both backends must understand alike.
_WORDS = st.lists(st.one_of(_LETTERS, _SYNTAX) | _OPERATORS, max_size=60).map("".join)
#: Anything a URL can carry (UTF-8, so no lone surrogate) but NUL, which the API's
#: guards refuse before any route.
_ANY = (
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=MAX_SEARCH_LENGTH)
    | _WORDS
)


def _parsed(q: str) -> Search | None:
    try:
        search = parse_search(q)
    except SearchSyntaxError:
        words = len({word for word in q.split() if re.search(r"[^\W_]", word)})
        # (The last word, a prefix, may differ from the same word earlier: hence >=.)
        refused = len(q) > MAX_SEARCH_LENGTH or words >= MAX_SEARCH_TERMS or words == 0
        assert refused, q
        return None
    assert len(q) <= MAX_SEARCH_LENGTH
    return search


def _fts5(q: str, *, must_find: bool) -> None:
    search = _parsed(q)
    if search is None:
        return
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        db.execute(
            "CREATE VIRTUAL TABLE t USING fts5(body, tokenize = 'unicode61 remove_diacritics 0')"
        )
        db.execute("INSERT INTO t (body) VALUES (?)", (q,))
        for term in search.terms:
            query = render_fts5(term)
            (found,) = db.execute("SELECT count(*) FROM t WHERE t MATCH ?", (query,)).fetchone()
            # Each term of a text is found in that same text.
            assert found == 1 or not must_find, (q, query)


@settings(max_examples=200, deadline=None)
@given(q=_WORDS)
def test_each_term_is_found_in_its_own_text_by_fts5(q: str) -> None:
    _fts5(q, must_find=True)


@settings(max_examples=200, deadline=None)
@given(q=_ANY)
def test_any_text_is_a_valid_fts5_query_or_refused(q: str) -> None:
    _fts5(q, must_find=False)


async def _tsquery(texts: list[str], *, must_find: bool) -> None:
    url = make_url(PG_ADMIN_URL).set(drivername="postgresql")
    try:
        conn = await asyncpg.connect(url.render_as_string(hide_password=False), timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        require(False, f"PostgreSQL unavailable: {exc}")
        return
    try:
        for q in texts:
            search = _parsed(q)
            for term in search.terms if search else ():
                # Tokenised as migration 0013's generated column is.
                found = await conn.fetchval(
                    "SELECT to_tsvector('simple', regexp_replace($1, '[^[:alnum:]]+', ' ', 'g'))"
                    " @@ to_tsquery('simple', $2)",
                    q,
                    render_tsquery(term),
                )
                assert found or not must_find, (q, render_tsquery(term))
    finally:
        await conn.close()


@pytest.mark.postgres
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(_WORDS, min_size=20, max_size=20))
def test_each_term_is_found_in_its_own_text_by_postgresql(texts: list[str]) -> None:
    asyncio.run(_tsquery(texts, must_find=True))


@pytest.mark.postgres
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(_ANY, min_size=20, max_size=20))
def test_any_text_is_a_valid_tsquery_or_refused(texts: list[str]) -> None:
    asyncio.run(_tsquery(texts, must_find=False))


def test_a_whole_reference_is_exact_and_a_partial_one_a_prefix() -> None:
    assert not parse_search("CS-2026-000042").terms[-1].prefix
    assert not parse_search("see CS-2026-0000421.").terms[-1].prefix
    assert parse_search("CS-2026-00004").terms[-1].prefix
    assert parse_search("CS-2026-000042 loss").terms[-1].prefix
    assert parse_search("CS-2026-000042").terms[0].tokens == ("cs", "2026", "000042")


#: q -> the plain words it means: operators of either syntax are only separators.
SYNTAX: Final = {
    '"fibre': "fibre",
    'fibre"': "fibre",
    "fibre*": "fibre",
    "*fibre": "fibre",
    "(fibre)": "fibre",
    "fibre:*": "fibre",
    "'fibre'": "fibre",
    "!fibre": "fibre",
    "-fibre": "fibre",
    "^fibre": "fibre",
    "fibre & depot": "fibre depot",
    "fibre | nothing": "fibre nothing",
    "fibre AND NOT depot": "fibre and not depot",
    "fibre OR geneva": "fibre or geneva",
    "fibre NEAR depot": "fibre near depot",  # "near" is a word of the summary
    "NEAR(fibre depot)": "near(fibre depot)",
    "summary:fibre": "summary:fibre",
    "fibre\\": "fibre",
    "100%": "100",
    "fibre_cut": "fibre cut",
    "{ref} : fibre": "ref fibre",
    "fibre ' OR 1=1 --": "fibre or 1 1",
}
NO_WORDS: Final = ["", " ", '"', "*", "(", ")", ":", "&", "|", "!", '""', "&|!:*()", "'", "_", "-"]


async def test_query_syntax_characters_are_only_separators(
    staff: httpx.AsyncClient, acme: httpx.AsyncClient, corpus: Corpus
) -> None:
    plain = {words: await found(staff, {"q": words}) for words in set(SYNTAX.values())}
    for q, words in SYNTAX.items():
        assert await found(staff, {"q": q}) == plain[words], q
    # A customer's search is parsed alike, within its own cases.
    for q in ('"fibre', "fibre & depot", "!fibre", "NEAR(fibre depot)", "fibre OR geneva"):
        assert await found(acme, {"q": q}) == await found(acme, {"q": SYNTAX[q]}), q
    assert await found(staff, {"q": "fibre NEAR depot"}) == [corpus.refs["fibre"]]
    assert await found(staff, {"q": "fibre | nothing"}) == []


async def test_a_search_without_words_or_too_long_is_a_422_naming_q(
    staff: httpx.AsyncClient, acme: httpx.AsyncClient
) -> None:
    too_many = " ".join(f"w{n}" for n in range(MAX_SEARCH_TERMS + 1))
    for q in [*NO_WORDS, "a" * (MAX_SEARCH_LENGTH + 1), "fibre " * 200, too_many]:
        for client in (staff, acme):
            body = problem(await client.get("/v1/cases", params={"q": q}), 422, "validation_error")
            assert [error["field"] for error in body["errors"]] == ["q"], q
    # Repeated words count once: 33 words, 2 different ones.
    longest = ("fibre " * MAX_SEARCH_LENGTH)[: MAX_SEARCH_LENGTH - 1] + "x"
    assert len(longest) == MAX_SEARCH_LENGTH
    assert (await staff.get("/v1/cases", params={"q": longest})).status_code == 200
    # Bytes that are no UTF-8 (a lone surrogate, a stray byte) are no words either.
    for raw in ("%ED%A0%80", "%FF", "%C0%AF"):
        problem(await staff.get(f"/v1/cases?q={raw}"), 422, "validation_error")
    body = problem(await staff.get("/v1/cases", params={"q": "&|"}), 422, "validation_error")
    assert "letter or a digit" in body["errors"][0]["message"]


async def test_search_beside_the_other_filters_across_pages(
    staff: httpx.AsyncClient, acme: httpx.AsyncClient, corpus: Corpus
) -> None:
    router = {"geneva", "dispatch", "reboots"}
    cases: list[tuple[Params, set[str]]] = [
        ({"q": "router"}, router),
        ({"q": "router", "status": "in_progress"}, {"reboots"}),
        ({"q": "router", "status": "new"}, {"geneva", "dispatch"}),
        ({"q": "router", "priority": "P1"}, {"geneva"}),
        ({"q": "router", "priority": ["P2", "P3"]}, {"dispatch", "reboots"}),
        ({"q": "router", "customer": "cust-1"}, {"dispatch", "reboots"}),
        ({"q": "router", "severity": "request"}, {"dispatch"}),
        ({"q": "router", "type": "incident", "source": "api"}, {"geneva", "reboots"}),
        ({"q": "fibre", "status": "in_progress"}, set()),
    ]
    for params, names in cases:
        for limit in (1, 2):
            assert await walk(staff, params, limit=limit) == corpus.expect(names), params
    assert await walk(acme, {"q": "router"}, limit=1) == corpus.expect(router & OWN["acme"])
    assert await walk(acme, {"q": "contractor"}, limit=1) == []


async def test_a_cursor_is_bound_to_its_search(staff: httpx.AsyncClient, corpus: Corpus) -> None:
    first = await staff.get("/v1/cases", params={"q": "router", "limit": 1})
    cursor = first.json()["next_cursor"]
    assert isinstance(cursor, str)
    for changed in ({"q": "fibre"}, {"q": "route"}, {}, {"q": "router geneva"}):
        response = await staff.get("/v1/cases", params={**changed, "cursor": cursor})
        body = problem(response, 422, "validation_error")
        assert [error["field"] for error in body["errors"]] == ["cursor"], changed
    # The same search however spelt (case, punctuation) is the same listing.
    same = await staff.get("/v1/cases", params={"q": "ROUTER!", "cursor": cursor, "limit": 5})
    assert same.status_code == 200, same.text
    want = corpus.expect({"geneva", "dispatch", "reboots"})[1:]
    assert [case["ref"] for case in same.json()["data"]] == want


# -- severity ---------------------------------------------------------------------------


async def test_severity_is_the_impact_of_type_and_priority(
    staff: httpx.AsyncClient, acme: httpx.AsyncClient, corpus: Corpus
) -> None:
    expected = {
        "outage": {"fibre", "geneva"},
        "degraded": {"loss", "reboots"},
        "request": {"dispatch", "rfo"},
    }
    for severity, names in expected.items():
        assert await walk(staff, {"severity": severity}) == corpus.expect(names)
        assert await walk(acme, {"severity": severity}) == corpus.expect(names & OWN["acme"])
    both = await walk(staff, {"severity": ["outage", "request", "outage"]})
    assert both == corpus.expect(expected["outage"] | expected["request"])
    assert await walk(staff, {"severity": ["outage", "degraded", "request"]}) == await walk(
        staff, {}
    )
    # An incident support lowers to P3 still has an impact: degraded, not a request.
    lowered = await staff.patch(f"/v1/cases/{corpus.refs['loss']}", json={"priority": "P3"})
    assert lowered.status_code == 200, lowered.text
    assert await walk(staff, {"severity": "degraded"}) == corpus.expect(expected["degraded"])
    raised = await staff.patch(f"/v1/cases/{corpus.refs['reboots']}", json={"priority": "P1"})
    assert raised.status_code == 200, raised.text
    assert await walk(staff, {"severity": "outage"}) == corpus.expect(
        {"fibre", "geneva", "reboots"}
    )


@pytest.mark.parametrize(
    ("params", "field", "value"),
    [
        ({"severity": "critical"}, "severity.0", "critical"),
        ({"severity": ["outage", "P1"]}, "severity.1", "P1"),
        ({"severity": "Outage"}, "severity.0", "Outage"),
    ],
)
async def test_an_unknown_severity_is_a_422_listing_the_allowed(
    staff: httpx.AsyncClient,
    acme: httpx.AsyncClient,
    params: dict[str, Any],
    field: str,
    value: str,
) -> None:
    for client in (staff, acme):
        body = problem(await client.get("/v1/cases", params=params), 422, "validation_error")
        assert [error["field"] for error in body["errors"]] == [field]
        message = body["errors"][0]["message"]
        assert all(allowed in message for allowed in ("outage", "degraded", "request")), message
        assert value in body["detail"] or value in message, body


# -- the index follows the data ----------------------------------------------------------


def _alembic(connection: Connection, action: str, revision: str) -> None:
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    getattr(command, action)(config, revision)


async def _search(database: Database, q: str, *, internal: bool = True) -> list[str]:
    filters = CaseFilters(search=parse_search(q), internal_text=internal)
    async with database.sessionmaker() as session:
        cases = await repository.list_cases(session, filters=filters, before_id=None, limit=50)
    return [case.ref for case in cases]


async def test_migration_indexes_existing_cases_and_later_changes(
    database: Database, staff: httpx.AsyncClient, corpus: Corpus
) -> None:
    async with database.engine.begin() as conn:
        await conn.run_sync(_alembic, "downgrade", "0012")
    try:
        # Written while no search index exists (no trigger on SQLite), in plain SQL:
        # the models describe the newest schema, not revision 0012's.
        async with database.engine.begin() as conn:
            await conn.execute(
                text("UPDATE cases SET description = :text WHERE ref = :ref"),
                {"text": "Written before the index: quokka.", "ref": corpus.refs["rfo"]},
            )
    finally:
        # Never leave the session's shared database at an old revision.
        async with database.engine.begin() as conn:
            await conn.run_sync(_alembic, "upgrade", "head")
    assert await _search(database, "quokka") == [corpus.refs["rfo"]]
    assert await _search(database, "contractor") == corpus.expect(INTERNAL["contractor"])
    assert await _search(database, "contractor", internal=False) == []
    # A change to the searched text replaces the old words (SQLite: the update trigger).
    async with database.sessionmaker() as session:
        case = (
            await session.execute(select(Case).where(Case.ref == corpus.refs["rfo"]))
        ).scalar_one()
        case.summary = "Wombat sighting"
        await session.commit()
    assert await _search(database, "wombat") == [corpus.refs["rfo"]]
    assert await _search(database, "geneva outage") == []
    assert await found(staff, {"q": "splicing"}) == [corpus.refs["fibre"]]
    if database.backend == "sqlite":
        async with database.engine.begin() as conn:
            # FTS5 checks its index against the content tables (raises if they differ).
            for table in ("cases_fts", "comments_fts"):
                await conn.execute(
                    text(f"INSERT INTO {table} ({table}) VALUES ('integrity-check')")
                )
