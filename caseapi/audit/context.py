"""Who is acting and from where, for the audit recorder: one origin per request.

The recorder (``caseapi.audit.service.record``) is called by the services inside
their own transactions; they know the action, the target and the details, not the
HTTP request. The origin reaches it through a context variable:

- ``AuditContext`` (ASGI middleware, mounted by ``create_app``) gives every request a
  fresh ``AuditOrigin`` with the client's address and its ``X-Request-ID`` and
  removes it when the request ends, so nothing leaks into the next request;
- ``caseapi.auth.deps.get_principal`` names the authenticated caller in it
  (``bind_principal``), so every authenticated route is covered without a line of
  its own;
- the ``nms apikey`` commands run under ``audit_origin(cli_origin())``;
- anything else (the detector, the ticker, a script calling a service) is
  ``system`` with no address.

The origin is a small mutable holder set once per request: FastAPI may run a
dependency in a worker thread with a copy of the context, where setting the variable
would be lost; filling in the holder is not.
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from caseapi.audit.enums import ActorKind
from caseapi.auth.principal import Principal

#: Address recorded for the command line.
CLI_CLIENT: Final = "cli"
REQUEST_ID_HEADER: Final = b"x-request-id"
#: A request id is kept only if it looks like one (no free text reaches the log).
_REQUEST_ID: Final = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
_CLIENT_LENGTH: Final = 64


@dataclass(frozen=True, slots=True)
class AuditActor:
    """Who acted, as the audit log records it."""

    kind: ActorKind
    #: As timelines show it: ``engineer:alice``, ``cli:root``, ``system``.
    name: str
    id: str | None = None
    key_prefix: str | None = None
    role: str | None = None
    customer_id: str | None = None

    @classmethod
    def of_principal(cls, principal: Principal) -> AuditActor:
        """An API key's caller, or a person signed in to the web console."""
        if principal.user_id is not None:
            return cls(
                kind=ActorKind.USER,
                name=principal.actor[:255],
                id=str(principal.user_id),
                role=principal.role.value,
                customer_id=principal.customer_id,
            )
        return cls(
            kind=ActorKind.API_KEY,
            name=principal.actor,
            id=str(principal.key_id) if principal.key_id is not None else None,
            key_prefix=principal.key_prefix,
            role=principal.role.value,
            customer_id=principal.customer_id,
        )

    @classmethod
    def cli(cls, user: str) -> AuditActor:
        """A person at the ``nms`` command line, by operating-system user name."""
        return cls(kind=ActorKind.CLI, name=f"cli:{user}"[:255], id=user[:64])

    @classmethod
    def mail(cls, sender: str) -> AuditActor:
        """The sender of an inbound mail, by address (``mail:`` when there is none)."""
        return cls(kind=ActorKind.MAIL, name=f"mail:{sender}"[:255], id=sender[:64] or None)


SYSTEM: Final = AuditActor(kind=ActorKind.SYSTEM, name="system")


@dataclass(slots=True)
class AuditOrigin:
    """Where an action comes from: the actor (filled in once known), address, request id."""

    client: str | None = None
    request_id: str | None = None
    actor: AuditActor = field(default=SYSTEM)


_ORIGIN: ContextVar[AuditOrigin | None] = ContextVar("caseapi_audit_origin", default=None)


def current_origin() -> AuditOrigin:
    """The origin of what runs now (``system`` with no address outside any request)."""
    return _ORIGIN.get() or AuditOrigin()


def bind_principal(principal: Principal) -> None:
    """Name ``principal`` as the actor of the current request."""
    origin = _ORIGIN.get()
    if origin is None:
        # No middleware (an app assembled by hand): an origin of our own, without an
        # address; it lives as long as this context.
        origin = AuditOrigin()
        _ORIGIN.set(origin)
    origin.actor = AuditActor.of_principal(principal)


@contextmanager
def audit_origin(origin: AuditOrigin) -> Iterator[AuditOrigin]:
    """Run the block with ``origin`` as the audit origin (the CLI, tests)."""
    token = _ORIGIN.set(origin)
    try:
        yield origin
    finally:
        _ORIGIN.reset(token)


def cli_origin(user: str | None = None) -> AuditOrigin:
    """The origin of a command run at the ``nms`` command line by ``user`` (default: the
    operating-system user)."""
    if user is None:
        try:
            user = getpass.getuser()
        except (OSError, KeyError):  # no name for this uid (some containers)
            user = "unknown"
    return AuditOrigin(client=CLI_CLIENT, actor=AuditActor.cli(user))


class AuditContext:
    """ASGI middleware: a fresh ``AuditOrigin`` for each HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        origin = AuditOrigin(
            client=str(client[0])[:_CLIENT_LENGTH] if client else None,
            request_id=_request_id(scope),
        )
        with audit_origin(origin):
            await self.app(scope, receive, send)


def _request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER:
            text = value.decode("latin-1").strip()
            return text if _REQUEST_ID.match(text) else None
    return None
