"""The FastAPI application: routers, health check and RFC 9457 problem responses.

Every error body is ``application/problem+json`` with the RFC 9457 members
(``type``, ``title``, ``status``, ``detail``, ``instance``) plus a machine-readable
``code`` (``case_not_found``, ``ntu_not_found``, ``validation_error``,
``database_unavailable``, ...). Validation errors add ``errors``: one entry per bad
field, each naming it. A query parameter the operation does not declare is refused,
not ignored (``unknown_query_parameter``, with ``unknown`` and ``allowed``). Any
domain error's ``problem_extensions`` become extra members (``from`` / ``to`` of
``invalid_transition``, ``missing`` of ``rfo_incomplete``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, Final

from argon2 import PasswordHasher
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from caseapi.api import openapi
from caseapi.api.body_limit import CODE as BODY_TOO_LARGE
from caseapi.api.body_limit import BodyLimit, BodyTooLargeError, RouteLimit
from caseapi.api.client_address import IPNetwork
from caseapi.api.guards import check_request
from caseapi.attachments.config import AttachmentSettings
from caseapi.attachments.errors import AttachmentTooLargeError
from caseapi.attachments.routes import UPLOAD_PATH
from caseapi.attachments.routes import router as attachments_router
from caseapi.attachments.service import AttachmentService
from caseapi.attachments.upload import MULTIPART_OVERHEAD
from caseapi.audit.context import AuditContext
from caseapi.audit.routes import router as audit_router
from caseapi.audit.service import AuditService
from caseapi.auth.routes import router as apikeys_router
from caseapi.auth.service import ApiKeyService
from caseapi.cases import repository as case_repository
from caseapi.cases.hot_read import HotCaseRead
from caseapi.cases.routes import router as cases_router
from caseapi.cases.service import CaseService
from caseapi.clock import Clock, SystemClock
from caseapi.comments.routes import router as comments_router
from caseapi.comments.service import CommentService
from caseapi.core.config import DEFAULT_MAX_BODY
from caseapi.core.database import session_scope
from caseapi.core.errors import (
    CaseApiError,
    DatabaseUnavailableError,
    InvalidCursorError,
    NotFoundError,
)
from caseapi.core.secrets import SecretBox
from caseapi.mail.held import HeldMailService
from caseapi.mail.ingest import MailIngestService
from caseapi.mail.intake import IngestSettings
from caseapi.mail.routes import router as mail_router
from caseapi.maintenance.routes import router as maintenance_router
from caseapi.maintenance.service import MaintenanceService
from caseapi.notifications.config import NotificationSettings
from caseapi.notifications.routes import router as notifications_router
from caseapi.notifications.service import WebhookService
from caseapi.ntus.routes import router as ntus_router
from caseapi.oncall import service as staff_alerts
from caseapi.oncall.ack import AlertAckService
from caseapi.oncall.routes import router as alerts_router
from caseapi.ratelimit.service import RateLimiter
from caseapi.replies.routes import router as replies_router
from caseapi.replies.service import ReplyService
from caseapi.reports.routes import router as reports_router
from caseapi.reports.service import ReportService
from caseapi.rfo.routes import router as rfo_router
from caseapi.rfo.service import RfoService
from caseapi.teams.routes import router as teams_router
from caseapi.users.config import SessionSettings
from caseapi.users.service import UserService
from caseapi.users.sessions import DatabaseSessionStore
from caseapi.web import routes as console
from caseapi.web.errors import page_error
from caseapi.web.paths import is_page
from caseapi.web.session import SessionStore

PROBLEM_JSON = openapi.PROBLEM_JSON
_RESERVED = frozenset({"type", "title", "status", "detail", "instance", "code"})

logger = logging.getLogger(__name__)

# Errors that mean "the database is not reachable right now", not "the request is
# wrong": asyncpg raises OSError subclasses for refused connections unwrapped.
_DATABASE_DOWN = (DatabaseUnavailableError, OperationalError, InterfaceError, OSError, TimeoutError)


def create_app(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    case_service: CaseService | None = None,
    clock: Clock | None = None,
    maintenance_service: MaintenanceService | None = None,
    extra_routers: Iterable[APIRouter] = (),
    healthz_timeout: float = 5.0,
    retry_after_seconds: int = 5,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    attachments: AttachmentSettings | None = None,
    notifications: NotificationSettings | None = None,
    secrets: SecretBox | None = None,
    rate_limiter: RateLimiter | None = None,
    trusted_proxies: Sequence[IPNetwork] = (),
    mail_ingest: MailIngestService | None = None,
    web_sessions: SessionStore | None = None,
    sessions: SessionSettings | None = None,
    password_hasher: PasswordHasher | None = None,
) -> FastAPI:
    """Build the API application.

    Args:
        sessionmaker: Session factory for the database (the app does not own the
            engine; whoever made it disposes of it).
        case_service: The service the case routes call; built from ``sessionmaker``
            and ``clock`` with the default SLA when omitted.
        clock: Clock for the services built here (``SystemClock`` when omitted).
        maintenance_service: The service the maintenance routes call; built on
            first use with the default rules and the case service's clock when omitted.
        extra_routers: More routers to mount (other domains, later issues).
        healthz_timeout: Seconds ``/healthz`` waits for the database.
        retry_after_seconds: ``Retry-After`` sent with 503 responses.
        max_body_bytes: Larger request bodies are refused with 413 before they are
            read (``caseapi.api.body_limit``); not the upload's (``attachments``).
        attachments: Limits and storage of attachments (the defaults when omitted);
            the upload's body limit is ``max_size`` plus the multipart overhead.
        notifications: Where webhooks may point (``notifications.webhooks.*``;
            the strict defaults when omitted).
        secrets: Encrypts webhook secrets at rest (``None``: stored as given).
        rate_limiter: Limits on failed authentications, case creation and comments
            (``caseapi.ratelimit``); none when omitted.
        trusted_proxies: Peers whose ``X-Forwarded-For`` names the client
            (``caseapi.api.client_address``); none when omitted.
        mail_ingest: The mail ingest the held-mail routes release through (built
            with the default ``mail`` settings and this app's services when omitted).
        web_sessions: The web console's session store (``caseapi.web``; sessions in
            the database, ``caseapi.users.sessions``, when omitted).
        sessions: Idle and absolute expiry of console sessions (``api.sessions``;
            the defaults when omitted).
        password_hasher: The Argon2id hasher of console passwords (argon2-cffi's
            defaults when omitted; tests pass a cheap one).
    """
    if healthz_timeout <= 0 or retry_after_seconds <= 0:
        raise ValueError("healthz_timeout and retry_after_seconds must be positive")
    app = FastAPI(
        title="nms case API",
        version="0.1.0",
        # FastAPI's native OpenTelemetry asks the global providers on every request
        # whether it is on (reading the environment each time); nms exports
        # Prometheus metrics and structured logs instead.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        dependencies=[Depends(check_request)],
    )
    # Every operation's problem responses (401/403/404/409/412/413/422/503...).
    openapi.install(app)
    app.state.sessionmaker = sessionmaker
    app.state.open_case_lookup = case_repository.latest_open_case_ref_for_ntu
    app.state.case_service = case_service or CaseService(
        sessionmaker=sessionmaker, clock=clock or SystemClock()
    )
    # Key expiry, comment and RFO times follow ``clock``: tests pass their FakeClock.
    domain_clock = clock or SystemClock()
    app.state.apikey_service = ApiKeyService(sessionmaker=sessionmaker, clock=domain_clock)
    app.state.comment_service = CommentService(
        sessionmaker=sessionmaker, clock=domain_clock, sla=app.state.case_service.sla
    )
    app.state.reply_service = ReplyService(
        sessionmaker=sessionmaker, clock=domain_clock, comments=app.state.comment_service
    )
    attachment_settings = attachments or AttachmentSettings()
    app.state.attachment_service = AttachmentService(
        sessionmaker=sessionmaker,
        clock=domain_clock,
        settings=attachment_settings,
        comments=app.state.comment_service,
    )
    app.state.rfo_service = RfoService(sessionmaker=sessionmaker, clock=domain_clock)
    app.state.audit_service = AuditService(sessionmaker=sessionmaker, clock=domain_clock)
    app.state.report_service = ReportService(sessionmaker=sessionmaker, clock=domain_clock)
    if maintenance_service is not None:
        app.state.maintenance_service = maintenance_service
    app.state.webhook_service = WebhookService(
        sessionmaker=sessionmaker,
        clock=domain_clock,
        settings=(notifications or NotificationSettings()).dispatcher(),
        secrets=secrets,
    )
    app.state.rate_limiter = rate_limiter
    app.state.trusted_proxies = tuple(trusted_proxies)
    app.state.mail_ingest = mail_ingest or MailIngestService(
        sessionmaker=sessionmaker,
        clock=domain_clock,
        settings=IngestSettings(),
        cases=app.state.case_service,
        comments=app.state.comment_service,
        attachments=app.state.attachment_service,
    )
    app.state.held_mail_service = HeldMailService(
        sessionmaker=sessionmaker, clock=domain_clock, ingest=app.state.mail_ingest
    )
    app.state.alert_ack_service = AlertAckService(sessionmaker=sessionmaker, clock=domain_clock)
    app.state.user_service = UserService(
        sessionmaker=sessionmaker, clock=domain_clock, hasher=password_hasher
    )
    # Ack links in staff alerts point at this API (the alerts are raised by case writers
    # of this process, which have no settings of their own).
    staff_alerts.configure((notifications or NotificationSettings()).staff_alert_config())
    retry_after = {"Retry-After": str(retry_after_seconds)}

    @app.get("/healthz", tags=["health"], response_model=None)
    async def healthz() -> dict[str, str] | JSONResponse:
        """Report whether the API can reach its database."""
        try:
            async with asyncio.timeout(healthz_timeout), session_scope(sessionmaker) as session:
                await session.execute(text("SELECT 1"))
        except (SQLAlchemyError, *_DATABASE_DOWN) as exc:
            logger.warning("healthz: database unavailable: %s", exc)
            return _database_unavailable(request_path="/healthz", headers=retry_after)
        return {"status": "ok"}

    app.include_router(cases_router)
    app.include_router(ntus_router)
    app.include_router(apikeys_router)
    app.include_router(comments_router)
    app.include_router(attachments_router)
    app.include_router(rfo_router)
    app.include_router(maintenance_router)
    app.include_router(notifications_router)
    app.include_router(audit_router)
    app.include_router(mail_router)
    app.include_router(reports_router)
    app.include_router(alerts_router)
    app.include_router(replies_router)
    app.include_router(teams_router)
    for router in extra_routers:
        app.include_router(router)
    # The web console: pages over the same services (caseapi.web).
    console.install(
        app,
        sessions=web_sessions
        or DatabaseSessionStore(sessionmaker=sessionmaker, clock=domain_clock, settings=sessions),
    )
    _install_error_handlers(app, retry_after=retry_after)
    upload_limit = RouteLimit(
        method="POST",
        path=re.compile(UPLOAD_PATH),
        max_bytes=int(attachment_settings.max_size) + MULTIPART_OVERHEAD,
        code=AttachmentTooLargeError.code,
    )
    # The plain case reads answered before routing (caseapi.cases.hot_read; inside the
    # body limit and the audit origin, as the route is).
    app.add_middleware(HotCaseRead, state=app.state)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, routes=[upload_limit])
    # Each request's audit origin (client address, request id, then the caller).
    app.add_middleware(AuditContext)
    return app


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """Build an RFC 9457 problem response with our ``code`` extension member."""
    body: dict[str, Any] = {
        # "about:blank": the status code says it all, so title is its phrase (RFC 9457
        # section 4.2.1); ``code`` carries the precise reason.
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance is not None:
        body["instance"] = instance
    # Extension members add to the problem; they never replace a standard member.
    body.update({name: value for name, value in extensions.items() if name not in _RESERVED})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _database_unavailable(*, request_path: str, headers: dict[str, str]) -> JSONResponse:
    return problem(
        503,
        DatabaseUnavailableError.code,
        "the database is unavailable; retry later",
        instance=request_path,
        headers=headers,
    )


def _field_name(loc: Iterable[int | str]) -> str:
    # FastAPI locations start with where the value came from ("query", "path",
    # "body"); the rest is the field path.
    parts = [str(part) for part in loc]
    if parts and parts[0] in ("query", "path", "body", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or "request"


#: Pydantic error types whose message lists the allowed values but not the one given.
_CHOICE_ERRORS: Final = frozenset({"enum", "literal_error"})


def _message(error: Mapping[str, Any]) -> str:
    message = str(error.get("msg", ""))
    given = error.get("input")
    if error.get("type") in _CHOICE_ERRORS and isinstance(given, str):
        message += f", not {given[:100]!r}"
    return message


def _install_error_handlers(app: FastAPI, *, retry_after: dict[str, str]) -> None:
    async def on_case_api_error(request: Request, exc: Exception) -> JSONResponse:
        # Any domain error that declares ``http_status`` (and optionally
        # ``http_headers``) becomes a problem with its ``code``; the more specific
        # handlers below win for their own classes. Anything else is a bug: 500.
        assert isinstance(exc, CaseApiError)
        status = getattr(exc, "http_status", None)
        if not isinstance(status, int):
            raise exc
        headers = getattr(exc, "http_headers", None)
        extensions = getattr(exc, "problem_extensions", None) or {}
        return problem(
            status,
            exc.code,
            str(exc),
            instance=request.url.path,
            headers=dict(headers or {}),
            **extensions,
        )

    async def on_not_found(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, NotFoundError)
        return problem(404, exc.code, str(exc), instance=request.url.path)

    async def on_invalid_cursor(request: Request, exc: Exception) -> JSONResponse:
        return problem(
            422,
            "validation_error",
            "invalid cursor: pass next_cursor from the previous page unchanged",
            instance=request.url.path,
            errors=[{"field": "cursor", "message": str(exc)}],
        )

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"field": _field_name(error.get("loc", ())), "message": _message(error)}
            for error in exc.errors()
        ]
        detail = "; ".join(f"{error['field']}: {error['message']}" for error in errors)
        return problem(422, "validation_error", detail, instance=request.url.path, errors=errors)

    async def on_database_down(request: Request, exc: Exception) -> JSONResponse:
        logger.warning("%s %s: database unavailable: %s", request.method, request.url.path, exc)
        return _database_unavailable(request_path=request.url.path, headers=retry_after)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        status = HTTPStatus(exc.status_code)
        code = status.phrase.lower().replace(" ", "_").replace("-", "_")
        extensions: dict[str, Any] = {}
        if isinstance(exc, BodyTooLargeError):
            code, extensions["max_bytes"] = exc.code, exc.max_bytes
        elif exc.status_code == 413:
            code = BODY_TOO_LARGE  # stable: Python 3.13 renames the phrase
        detail = exc.detail if isinstance(exc.detail, str) else status.description
        headers = dict(exc.headers) if exc.headers else {}
        if exc.status_code == 405:
            # Starlette names the methods of the first route that matched the path
            # only; a path served by several routes (GET and PATCH) allows them all.
            # ``Allow`` lists the methods the document has for the path.
            allowed = openapi.allowed_methods(request.app, request.url.path)
            if allowed:  # else a route outside the document: Starlette's answer stands
                headers["Allow"] = ", ".join(allowed)
        return problem(
            exc.status_code,
            code,
            detail,
            instance=request.url.path,
            headers=headers or None,
            **extensions,
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # Starlette logs the exception and re-raises it after this answer.
        return PlainTextResponse("Internal Server Error", status_code=500)

    pages_first = _pages_first
    app.add_exception_handler(CaseApiError, pages_first(on_case_api_error))
    app.add_exception_handler(NotFoundError, pages_first(on_not_found))
    app.add_exception_handler(InvalidCursorError, pages_first(on_invalid_cursor, status=422))
    app.add_exception_handler(RequestValidationError, pages_first(on_validation, status=422))
    app.add_exception_handler(StarletteHTTPException, pages_first(on_http_error))
    for exc_type in _DATABASE_DOWN:
        app.add_exception_handler(exc_type, pages_first(on_database_down, status=503))
    app.add_exception_handler(Exception, pages_first(on_unexpected))


_Handler = Callable[[Request, Exception], Awaitable[Response]]


def _pages_first(handler: _Handler, *, status: int | None = None) -> _Handler:
    """``handler`` for the API; the console's error page (``status``) for its pages."""

    async def handle(request: Request, exc: Exception) -> Response:
        if is_page(request):
            return await page_error(request, exc, status=status)
        return await handler(request, exc)

    return handle
