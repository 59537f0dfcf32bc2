"""HTTP routes for NTUs and their current status (read-only).

Every authenticated role may read; a customer sees only its own NTUs (another
customer's NTU answers 404 ``ntu_not_found``, as if it did not exist; naming another
customer in ``?customer=`` is 403 ``customer_mismatch``).
"""

from __future__ import annotations

from typing import Annotated, Final, Protocol

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from caseapi.api.openapi import errors
from caseapi.api.responses import model_response
from caseapi.auth.deps import CurrentPrincipal
from caseapi.auth.errors import CustomerMismatchError
from caseapi.auth.tenancy import ensure_visible, own_customer
from caseapi.core.database import decode_cursor, encode_cursor, session_scope
from caseapi.core.deps import SessionDep
from caseapi.core.errors import NtuNotFoundError
from caseapi.ntus import repository
from caseapi.ntus.schemas import NtuPublic, NtusPublic, NtuStatusPublic

MAX_PAGE_SIZE: Final = 500
_CURSOR_KEYS: Final = {"id": str}

router = APIRouter(prefix="/v1/ntus", tags=["ntus"])


class OpenCaseLookup(Protocol):
    """The reference of the newest open case on an NTU, if any (a cases query):
    ``app.state.open_case_lookup``, wired by ``create_app``. Injected rather than
    imported so that this domain stays below ``cases``, which reads the NTUs."""

    async def __call__(self, session: AsyncSession, *, ntu_id: str) -> str | None: ...


@router.get("", responses=errors(CustomerMismatchError))
async def list_ntus(
    # The caller first: its key check must not wait for a connection while this
    # request holds one (32 concurrent requests exhausted the pool that way).
    principal: CurrentPrincipal,
    session: SessionDep,
    customer: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> NtusPublic:
    """List NTUs by id with their current status (a customer: its own)."""
    after_id = decode_cursor(cursor, keys=_CURSOR_KEYS)["id"] if cursor is not None else None
    customer = own_customer(principal, customer, field="customer")
    # One extra row tells whether another page exists.
    rows = await repository.list_ntus(
        session, customer_id=customer, status=status, after_id=after_id, limit=limit + 1
    )
    count = await repository.count_ntus(session, customer_id=customer, status=status)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor({"id": rows[-1].ntu.id})
    return NtusPublic(
        data=[NtuPublic.from_row(row) for row in rows], count=count, next_cursor=next_cursor
    )


@router.get("/{ntu_id}/status", response_model=NtuStatusPublic)
async def get_ntu_status(
    ntu_id: str, principal: CurrentPrincipal, request: Request
) -> JSONResponse:
    """Get the current status of one NTU and its open case, if any."""
    # The session and the case lookup come from the app's state, not from dependencies
    # of their own (a hot read: FastAPI's cost per dependency, as ``get_principal``),
    # and the answer is encoded once (``model_response``).
    state = request.app.state
    open_case: OpenCaseLookup = state.open_case_lookup
    async with session_scope(state.sessionmaker, reads=True) as session:
        row = await repository.get_ntu(session, ntu_id=ntu_id)
        if row is None:
            raise NtuNotFoundError(ntu_id)
        ensure_visible(principal, row.ntu.customer_id, NtuNotFoundError(ntu_id))
        case_ref = await open_case(session, ntu_id=ntu_id)
    return model_response(NtuStatusPublic.from_row(row, case_ref=case_ref))
