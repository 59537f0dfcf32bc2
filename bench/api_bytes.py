"""Are the hot reads' answers byte for byte what they were? Save them, change, compare.

    python bench/api_bytes.py --database URL save answers.json
    (change the code, or check out another commit)
    python bench/api_bytes.py --database URL compare answers.json

Drives the app ``nms api`` builds (``nms.app.wiring.build_api``) in process, straight
through ASGI, on a filled database (``bench/console_pages.py``'s ``fill``, or
``bench/api_load.py``'s; nothing is written but two API keys at ``save``): one case,
pages of cases (filters, search, the second page through its cursor), NTU status,
their errors (404, 422, 401), for a staff key and a customer key, and
``/openapi.json``. ``save`` writes status, headers and body of each, with the keys;
``compare`` asks again and prints every difference (exit status 1 if any). Not a
test: it needs a database with data, which the tests do not have.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any, Final

# Run as a script from anywhere: the tree's root first (for ``caseapi`` and ``nms``).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from caseapi.auth.principal import Role
from caseapi.auth.service import ApiKeyService
from caseapi.clock import SystemClock
from caseapi.core.database import make_engine, make_sessionmaker
from nms.app.settings import Settings
from nms.app.wiring import build_api, build_case_services, build_rate_limiter
from nms.clock import SystemClock as NmsClock

PATHS: Final = (
    "/v1/cases/CS-2026-000500",
    "/v1/cases/CS-2026-000001",
    "/v1/cases/CS-2026-000006",
    "/v1/cases/CS-2026-999999",
    "/v1/cases?limit=50",
    "/v1/cases?limit=7&status=new&status=in_progress",
    "/v1/cases?limit=3&customer=cust-5",
    "/v1/cases?limit=200",
    "/v1/cases?limit=0",
    "/v1/cases?bogus=1",
    "/v1/cases?limit=5&q=router",
    "/v1/cases?limit=5&severity=outage&priority=P1",
    "/v1/cases?customer=nobody",
    "/v1/ntus/ntu-5000/status",
    "/v1/ntus/ntu-5/status",
    "/v1/ntus/nope/status",
    "/openapi.json",
)
Answer = dict[str, Any]


async def _keys(url: str) -> dict[str, str]:
    engine = make_engine(url)
    service = ApiKeyService(sessionmaker=make_sessionmaker(engine), clock=SystemClock())
    staff = await service.create_key(name="bytes-staff", role=Role.ENGINEER, created_by="bench")
    customer = await service.create_key(
        name="bytes-customer", role=Role.CUSTOMER, customer_id="cust-5", created_by="bench"
    )
    await engine.dispose()
    return {"staff": staff.secret, "customer": customer.secret}


async def _get(app: Any, target: str, key: str) -> Answer:
    path, _, query = target.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"authorization", f"Bearer {key}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    answer: Answer = {"status": 0, "headers": [], "body": ""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = [[k.decode(), v.decode()] for k, v in message.get("headers", [])]
        else:
            answer["body"] += message.get("body", b"").decode()

    await app(scope, receive, send)
    return answer


async def answers(url: str, keys: dict[str, str]) -> dict[str, Answer]:
    """Every answer of ``PATHS`` for each key (and an unknown key's), by name."""
    settings = Settings(database={"url": url})
    engine = make_engine(url)
    sessionmaker = make_sessionmaker(engine)
    clock = NmsClock()
    app = build_api(
        sessionmaker,
        clock,
        build_case_services(settings, sessionmaker, clock),
        settings=settings.api,
        rate_limiter=build_rate_limiter(settings.api),
    )
    found: dict[str, Answer] = {}
    try:
        for who, key in keys.items():
            for path in PATHS:
                found[f"{who} {path}"] = await _get(app, path, key)
            first = json.loads((await _get(app, "/v1/cases?limit=50", key))["body"])
            if first.get("next_cursor"):
                second = f"/v1/cases?limit=50&cursor={first['next_cursor']}"
                found[f"{who} page 2"] = await _get(app, second, key)
        found["unknown key"] = await _get(app, PATHS[0], "nms_unknown_key_0123456789")
    finally:
        await engine.dispose()
    return found


def _first_difference(old: str, new: str) -> str:
    at = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), None)
    at = min(len(old), len(new)) if at is None else at
    return f"at {at}: {old[max(0, at - 60) : at + 60]!r} -> {new[max(0, at - 60) : at + 60]!r}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="a filled database's URL")
    parser.add_argument("action", choices=("save", "compare"))
    parser.add_argument("file", type=Path)
    args = parser.parse_args()
    if args.action == "save":
        keys = asyncio.run(_keys(args.database))
        found = asyncio.run(answers(args.database, keys))
        args.file.write_text(json.dumps({"keys": keys, "answers": found}, indent=1))
        print(f"{len(found)} answers saved in {args.file}")
        return
    saved = json.loads(args.file.read_text())
    found = asyncio.run(answers(args.database, saved["keys"]))
    differ = 0
    for name, old in saved["answers"].items():
        new = found.get(name)
        if new == old:
            continue
        differ += 1
        print(f"DIFFERS {name}")
        if new is None:
            continue
        for part in ("status", "headers", "body"):
            if old[part] != new[part]:
                print(f"  {part} {_first_difference(str(old[part]), str(new[part]))}")
    print(f"{len(saved['answers'])} answers compared, {differ} differ")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
