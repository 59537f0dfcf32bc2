"""Case search latency (``GET /v1/cases?q=``) on PostgreSQL with many cases.

    python bench/case_search.py [--cases 100000] [--runs 20]

Creates the database ``nms_bench_search`` on the local server (127.0.0.1, as the
tests' ``NMS_TEST_PG_URL``), migrates it, fills it with ``--cases`` cases of
generated text and two comments each (one public, one internal), then times the
query the API runs for a search page (the first 51 matches and the count, through
``caseapi.cases.repository``) for several kinds of search, as staff and as a
customer. Prints the median and worst of ``--runs``; drops the database at the end
(unless ``--keep``).
Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Final

from sqlalchemy import text
from sqlalchemy.engine import make_url

from caseapi.cases import repository
from caseapi.cases.repository import CaseFilters
from caseapi.cases.search import parse_search
from caseapi.database import make_engine, make_sessionmaker, migrate

ADMIN_URL: Final = os.environ.get(
    "NMS_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
NAME: Final = "nms_bench_search"
#: 2,000 generated words; each case's text draws from them (every word is rare-ish),
#: and "router" is in about a third of the summaries (a common word).
FILL: Final = """
WITH words AS (SELECT array_agg('w' || n) AS w FROM generate_series(1, 2000) AS n)
INSERT INTO cases (ref, type, priority, status, source, customer_id, summary, description,
                   created_at, updated_at)
SELECT format('CS-2026-%s', lpad(i::text, 6, '0')),
       CASE WHEN i % 5 = 0 THEN 'general_request' ELSE 'incident' END,
       CASE WHEN i % 5 = 0 THEN 'P3' WHEN i % 2 = 0 THEN 'P1' ELSE 'P2' END,
       CASE WHEN i % 7 = 0 THEN 'closed' ELSE 'new' END,
       'api',
       'cust-' || (i % 500),
       CASE WHEN i % 3 = 0 THEN 'Router ' ELSE '' END
         || w[1 + (i * 7) % 2000] || ' ' || w[1 + (i * 13) % 2000] || ' down at site ' || i,
       w[1 + (i * 17) % 2000] || ' ' || w[1 + (i * 19) % 2000] || ' ' || w[1 + (i * 23) % 2000]
         || ' since 14:00, the supplier says the circuit ' || w[1 + (i * 29) % 2000],
       now() - make_interval(mins => :cases - i), now()
FROM generate_series(1, :cases) AS i, words
"""
COMMENTS: Final = """
WITH words AS (SELECT array_agg('w' || n) AS w FROM generate_series(1, 2000) AS n)
INSERT INTO comments (case_id, created_at, author, author_role, visibility, body)
SELECT c.id, now(), 'engineer:bench', 'engineer', v.visibility,
       'We checked ' || w[1 + (c.id * 31 + v.n) % 2000]
         || ' and ' || w[1 + (c.id * 37 + v.n) % 2000]
         || CASE WHEN v.visibility = 'internal' THEN ' quietly' ELSE '' END
FROM cases AS c, words, (VALUES (1, 'public'), (2, 'internal')) AS v(n, visibility)
"""
#: label -> q (``{ref}``: a reference in the middle of the table).
SEARCHES: Final = {
    "one rare word": "w1234",
    "two rare words": "w1234 w77",
    "prefix (w12*)": "w12",
    "common word (router)": "router",
    "common words (router supplier)": "router supplier",
    "exact reference": "{ref}",
    "internal-only word (quietly)": "quietly",
    "no match": "zzzz",
}


async def _admin(statement: str) -> None:
    engine = make_engine(ADMIN_URL)
    try:
        async with engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text(statement))
    finally:
        await engine.dispose()


async def main(cases: int, runs: int, keep: bool) -> None:
    await _admin(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
    await _admin(f'CREATE DATABASE "{NAME}"')
    url = make_url(ADMIN_URL).set(database=NAME).render_as_string(hide_password=False)
    engine = make_engine(url)
    try:
        await migrate(engine)
        started = time.perf_counter()
        async with engine.begin() as conn:
            await conn.execute(text(FILL), {"cases": cases})
            await conn.execute(text(COMMENTS))
        async with engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("VACUUM ANALYZE"))
        print(f"{cases:,} cases, {2 * cases:,} comments in {time.perf_counter() - started:.0f} s")
        sessionmaker = make_sessionmaker(engine)
        ref = f"CS-2026-{cases // 2:06d}"
        for label, q in SEARCHES.items():
            for who, filters in (
                ("staff", CaseFilters(search=parse_search(q.format(ref=ref)), internal_text=True)),
                (
                    "customer",
                    CaseFilters(search=parse_search(q.format(ref=ref)), customer_id="cust-42"),
                ),
            ):
                times = []
                count = 0
                for _ in range(runs):
                    t0 = time.perf_counter()
                    async with sessionmaker() as session:
                        await repository.list_cases(
                            session, filters=filters, before_id=None, limit=51
                        )
                        count = await repository.count_cases(session, filters=filters)
                    times.append((time.perf_counter() - t0) * 1000)
                print(
                    f"{label:32s} {who:8s} {count:7,d} matches: "
                    f"median {statistics.median(times):6.1f} ms, worst {max(times):6.1f} ms"
                )
    finally:
        await engine.dispose()
        if not keep:
            await _admin(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the database (EXPLAIN)")
    args = parser.parse_args()
    asyncio.run(main(args.cases, args.runs, args.keep))
