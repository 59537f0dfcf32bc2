"""Schemathesis over every operation of the OpenAPI document, as staff and as a customer.

The document is the app's own (``app.openapi()``), so an endpoint another change
adds is tested without touching this file. Schemathesis' engine runs its examples,
coverage, fuzzing and stateful phases with its checks (server errors, status codes,
content types, response schemas and headers, 405 and ``Allow``, positive and
negative data, ignored auth, use after free, resource availability) and two of
ours (a customer gets no internal data; ``Allow`` names the path's methods), against
the real app on the test's database (SQLite and PostgreSQL). Path parameters are
drawn from the references and ids seeded here most of the time, so the operations
reach real cases, comments, RFOs, webhooks and maintenances, not only 404s.

Schemathesis sends its requests from its own thread and event loop; ``LoopBridge``
hands each one to the app on the test's loop, where the database engine's
connections live. Nothing leaves the process. Each run's one-line summary is
printed at the end of the pytest run (``pytest_terminal_summary`` in tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Final

import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events as engine_events

from caseapi.auth.principal import Role
from caseapi.cases.enums import INTERNAL_EVENT_KINDS
from caseapi.cases.schemas import CaseCustomerView, CasePublic
from caseapi.incidents import IncidentService
from caseapi.maintenance.schemas import MaintenanceCustomerView, MaintenancePublic
from tests.caseapi.auth_fixtures import authed_client, mint_key
from tests.caseapi.conftest import Database, incident, upstream
from tests.conftest import SCHEMATHESIS_SUMMARY

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Examples per operation in the examples and fuzzing phases, by backend. The
#: coverage phase (boundaries, negative values, unexpected methods: ~2,400 requests,
#: most of a run) is the same on both whatever this is. The fuzzing phase's random
#: valid data mostly tests the app, not the database: PostgreSQL, the production
#: backend, gets the deeper fuzzing; SQLite's fewer examples save ~10 s per run.
MAX_EXAMPLES: Final = {"postgres": 12, "sqlite": 5}
#: How often a path parameter is one of the seeded values instead of a generated one.
KNOWN_VALUE_PROBABILITY: Final = 0.7
#: What a schema-valid request may still get: the rules the schema cannot say (one
#: of ``due_at`` / ``within_minutes``, a 14-day notice, a cursor from another
#: query) are 422; the rest is whose the resource is and what state it is in.
ACCEPTED: Final = ["2xx", "401", "403", "404", "409", "412", "422", "503"]
CHECKS: Final = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "positive_data_acceptance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "ignored_auth",
    "allow_lists_the_documented_methods",
    "customers_get_no_internal_data",
    # Stateful phase: what one call created or deleted, the next sees.
    "use_after_free",
    "ensure_resource_availability",
)
HTTP_METHODS: Final = frozenset({"get", "put", "post", "patch", "delete", "options", "trace"})


@schemathesis.check
def allow_lists_the_documented_methods(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 405's ``Allow`` names every method the document has for the path.

    ``unsupported_method`` only asks for the header (an empty one passes) and
    ``allow_header_conformance`` reads it only on ``OPTIONS``.
    """
    if response.status_code != 405:
        return None
    allow = ", ".join(response.headers.get("allow", []))
    allowed = {method.strip().lower() for method in allow.split(",") if method.strip()}
    documented = {method for method in case.operation.schema[case.operation.path]}
    documented &= HTTP_METHODS
    if documented - allowed:
        raise AssertionError(f"Allow: {allow!r} misses {sorted(documented - allowed)}")
    return None


#: ``Authorization`` values of the customer keys minted here.
CUSTOMER_AUTHORIZATIONS: set[str] = set()
#: Fields only the staff views have: of a case (it has a ``priority``) and of a
#: maintenance window (it has ``starts_at``).
INTERNAL_FIELDS: Final = {
    "priority": set(CasePublic.model_fields) - set(CaseCustomerView.model_fields),
    "starts_at": set(MaintenancePublic.model_fields) - set(MaintenanceCustomerView.model_fields),
}
#: Timeline entries customers never get, and how an internal comment shows.
INTERNAL_KINDS: Final = {str(kind) for kind in INTERNAL_EVENT_KINDS}


@schemathesis.check
def customers_get_no_internal_data(ctx: Any, response: Any, case: Any) -> bool | None:
    """A customer key's answer holds no internal field, comment or timeline entry.

    The document allows either view of a case; this says which one a customer gets.
    """
    authorization = response.request.headers.get("authorization", "")
    if authorization not in CUSTOMER_AUTHORIZATIONS or not response.content:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        return None  # Markdown (an RFO) or an empty body
    leaks = sorted(set(_internal(body)))
    if leaks:
        raise AssertionError(f"a customer got internal data: {', '.join(leaks)}")
    return None


def _internal(value: Any) -> Iterator[str]:
    if isinstance(value, list):
        for item in value:
            yield from _internal(item)
    elif isinstance(value, dict):
        for marker, internal in INTERNAL_FIELDS.items():
            if "ref" in value and marker in value:
                yield from (f"field {name}" for name in internal & value.keys())
        if value.get("visibility") == "internal":
            yield "an internal comment"
        if value.get("kind") in INTERNAL_KINDS and "actor" in value:
            yield f"a {value['kind']} timeline entry"
        for item in value.values():
            yield from _internal(item)


@dataclass
class LoopBridge:
    """An ASGI app that runs each request on ``app`` in ``loop`` (another thread's)."""

    app: FastAPI
    loop: asyncio.AbstractEventLoop
    requests: int = 0
    server_errors: list[str] = field(default_factory=list)

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        future = asyncio.run_coroutine_threadsafe(self._call(dict(scope), body), self.loop)
        for message in await asyncio.wrap_future(future):
            await send(message)

    async def _call(self, scope: dict[str, Any], body: bytes) -> list[Message]:
        self.requests += 1
        sent: list[Message] = []
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            self.server_errors.append(f"{scope['method']} {scope['path']}: {exc!r}")
            if not sent:
                raise
        return sent


@dataclass(frozen=True)
class Seeded:
    """What path parameters may name: real references and ids of both customers."""

    refs: list[str]
    ids: list[int]
    ntus: list[str]


async def _seed(app: FastAPI, incidents: IncidentService) -> Seeded:
    """Cases, comments (one internal), a commitment, a hand-off, an RFO, a webhook and a
    maintenance to work on."""
    proactive = await incidents.open_incident(incident("ntu-1"))
    other = await incidents.open_incident(incident("ntu-9", customer_id="cust-2"))
    node = await incidents.open_upstream_incident(upstream(("ntu-2", "cust-1")))
    async with authed_client(app, role=Role.ENGINEER) as staff:
        created = await staff.post(
            "/v1/cases",
            json={
                "type": "general_request",
                "subject": "other",
                "summary": "New VLAN",
                "customer_id": "cust-1",
            },
        )
        assert created.status_code == 201, created.text
        reactive = created.json()["ref"]
        for ref in (proactive, reactive):
            comment = await staff.post(
                f"/v1/cases/{ref}/comments", json={"body": "Looking", "visibility": "public"}
            )
            assert comment.status_code == 201, comment.text
        commitment = await staff.post(
            f"/v1/cases/{proactive}/commitments",
            json={"kind": "next_update", "within_minutes": 30, "note": "next update"},
        )
        assert commitment.status_code == 200, commitment.text
        # What customers must never get: an internal comment and internal timeline
        # entries (assigned, handed_off) on their case.
        internal = [
            ("comments", {"body": "Suspect the PSU", "visibility": "internal"}),
            ("take", None),
            ("handoff", {"to_level": "L2", "summary": "PSU", "details": "Swap it"}),
        ]
        for action, body in internal:
            answer = await staff.post(f"/v1/cases/{proactive}/{action}", json=body)
            assert answer.is_success, answer.text
        rfo = await staff.put(f"/v1/cases/{proactive}/rfo", json={"root_cause": "Fibre cut"})
        assert rfo.status_code == 200, rfo.text
        webhook = await staff.post(
            "/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "customer_id": "cust-1"}
        )
        assert webhook.status_code == 201, webhook.text
        maintenance = await staff.post(
            "/v1/maintenances",
            json={
                "title": "Fibre works",
                "kind": "emergency",
                "starts_at": "2026-03-01T13:00:00Z",
                "ends_at": "2026-03-01T15:00:00Z",
                "scope": {"ntus": ["ntu-1"]},
            },
        )
        assert maintenance.status_code == 201, maintenance.text
    ids = sorted({1, 2, commitment.json()["commitments"][0]["id"], webhook.json()["id"]})
    refs = [proactive, reactive, other, node, maintenance.json()["ref"]]
    return Seeded(refs=refs, ids=ids, ntus=["ntu-1", "ntu-2", "ntu-9"])


def _config(key: str, seeded: Seeded, *, max_examples: int) -> SchemathesisConfig:
    generation = {"max-examples": max_examples, "deterministic": True, "database": "none"}

    def known(dictionary: str) -> dict[str, Any]:
        return {"dictionary": dictionary, "probability": KNOWN_VALUE_PROBABILITY}

    return SchemathesisConfig.from_dict(
        {
            "seed": 20260301,
            # Nothing persists between runs: each is the same, and writes nothing here.
            "cache": {"enabled": False},
            # Generation time depends on how loaded the machine is, not on the app.
            "suppress-health-check": ["too_slow"],
            "headers": {"Authorization": f"Bearer {key}"},
            "generation": generation,
            "checks": {
                "enabled": False,
                **{name: {"enabled": True} for name in CHECKS},
                "positive_data_acceptance": {"enabled": True, "expected-statuses": ACCEPTED},
            },
            "phases": {"stateful": {"enabled": True}},
            # A multipart text field carries text only: the "invalid" null or object
            # Schemathesis sends there arrives as the text `null` / `{}`, a valid comment.
            # Everything else about the upload is still checked.
            "operations": [
                {
                    "include-path": "/v1/cases/{ref}/attachments",
                    "include-method": "POST",
                    "checks": {"negative_data_rejection": {"enabled": False}},
                }
            ],
            "dictionaries": {
                "refs": {"values": seeded.refs},
                "ids": {"values": seeded.ids},
                "ntus": {"values": seeded.ntus},
            },
            "parameters": {
                "path.ref": known("refs"),
                "path.ntu_id": known("ntus"),
                "path.commitment_id": known("ids"),
                "path.key_id": known("ids"),
                "path.subscription_id": known("ids"),
                "path.delivery_id": known("ids"),
            },
        }
    )


@dataclass
class RunReport:
    operations: set[str] = field(default_factory=set)
    checks: int = 0
    #: (check name, what failed)
    failures: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def failed(self, *checks: str) -> int:
        return sum(1 for name, _ in self.failures if name in checks)


#: The checks whose failures are the document and the answers disagreeing.
SCHEMA_CHECKS: Final = (
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)


def _run_engine(schema: Any) -> RunReport:
    report = RunReport()
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, engine_events.ScenarioFinished):
            if event.phase != "stateful":  # a scenario over several operations
                report.operations.add(event.recorder.label)
            for case_id, checks in event.recorder.checks.items():
                report.checks += len(checks)
                for check in checks:
                    if check.failure_info is not None:
                        node = event.recorder.cases[case_id].value
                        failure = check.failure_info.failure
                        report.failures.append(
                            (
                                check.name,
                                f"{event.recorder.label} [{check.name}] {node.method} "
                                f"{node.formatted_path}: {failure.title} - {failure.message[:300]}",
                            )
                        )
        elif isinstance(event, engine_events.NonFatalError):
            report.errors.append(f"{event.label}: {event.value!r}")
        elif isinstance(event, engine_events.FatalError):
            report.errors.append(f"fatal: {event.exception!r}")
    return report


@pytest.mark.parametrize("caller", ["staff", "customer"])
async def test_every_operation_conforms_to_the_openapi(
    app: FastAPI,
    database: Database,
    incidents: IncidentService,
    caller: str,
    request: pytest.FixtureRequest,
) -> None:
    seeded = await _seed(app, incidents)
    if caller == "staff":
        key = await mint_key(app, role=Role.ENGINEER)
    else:
        key = await mint_key(app, role=Role.CUSTOMER, customer_id="cust-1")
        CUSTOMER_AUTHORIZATIONS.add(f"Bearer {key}")
    bridge = LoopBridge(app=app, loop=asyncio.get_running_loop())
    schema = schemathesis.openapi.from_dict(
        app.openapi(), config=_config(key, seeded, max_examples=MAX_EXAMPLES[database.backend])
    )
    schema.app = bridge
    started = time.monotonic()
    report = await asyncio.to_thread(_run_engine, schema)
    elapsed = time.monotonic() - started
    documented = sum(
        1
        for item in app.openapi()["paths"].values()
        for method in item
        if method in ("get", "put", "post", "patch", "delete")
    )
    server_errors = len(bridge.server_errors) + report.failed("not_a_server_error")
    summary = (
        f"schemathesis {database.backend}/{caller}: {len(report.operations)} of {documented} "
        f"operations, {bridge.requests} requests, {report.checks} checks: "
        f"{server_errors} server errors, {report.failed(*SCHEMA_CHECKS)} schema violations, "
        f"{len(report.failures)} failures in all, {len(report.errors)} errors ({elapsed:.1f} s)"
    )
    request.node.user_properties.append((SCHEMATHESIS_SUMMARY, summary))
    problems = report.errors + bridge.server_errors + [text for _, text in report.failures]
    assert not problems, summary + "\n" + "\n".join(problems)
    assert len(report.operations) == documented, summary
