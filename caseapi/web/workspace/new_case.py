"""The reactive case form (``/cases/new``): support opens a case for a customer.

Reactive: choosing the customer (a GET, or the script on change) lists that
customer's NTUs. The POST calls ``CaseService.create_case`` as ``POST /v1/cases``
does; its refusals (a contract without support, an NTU of another customer, a rule
on a field) are shown on the form with the status the API gives.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from caseapi.cases.enums import CasePriority, CaseSubject, CaseType
from caseapi.cases.schemas import CaseCreate
from caseapi.core.database import session_scope
from caseapi.core.errors import NtuNotFoundError
from caseapi.ntus import repository as ntu_repository
from caseapi.web.deps import StaffForm, StaffPage
from caseapi.web.render import render
from caseapi.web.session import WebSession
from caseapi.web.workspace.common import FORM_ERRORS, cases, drop_empty, form_of, refusal

router = APIRouter(include_in_schema=False)

#: NTUs offered in the form's list (a customer with more is typed by id).
MAX_NTUS_LISTED = 500
FIELDS = ("customer_id", "ntu_id", "type", "subject", "priority", "summary", "description", "site")


async def _render(
    request: Request,
    web: WebSession,
    form: dict[str, str],
    *,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    customer = (form.get("customer_id") or "").strip() or None
    ntus: list[Any] = []
    if customer is not None:
        async with session_scope(request.app.state.sessionmaker) as session:
            ntus = await ntu_repository.list_ntus(
                session, customer_id=customer, status=None, after_id=None, limit=MAX_NTUS_LISTED
            )
    context = {
        "form": form,
        "error": error,
        "ntus": ntus,
        "types": list(CaseType),
        "subjects": list(CaseSubject),
        "priorities": list(CasePriority),
    }
    return render(request, "workspace/new_case.html", context, status_code=status)


@router.get("/cases/new", response_class=HTMLResponse)
async def new_case_form(
    request: Request,
    web: StaffPage,
    customer: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    """The empty form (``?customer=``: with that customer's NTUs to choose from)."""
    return await _render(request, web, {"customer_id": customer or ""})


@router.post("/cases/new")
async def create_case(request: Request, web: StaffForm) -> Response:
    """Open the case; 303 to its page."""
    form = await form_of(request)
    try:
        draft = CaseCreate.model_validate(drop_empty({k: form.get(k, "") for k in FIELDS}))
        created = await cases(request).create_case(web.principal, draft)
    except FORM_ERRORS as exc:
        status, message = refusal(exc)
        if isinstance(exc, NtuNotFoundError):
            # The API's 404, said on the form: the NTU is not this customer's.
            message = f"ntu_id: {exc.ntu_id} is not an NTU of {form.get('customer_id')}"
        return await _render(request, web, form, error=message, status=status)
    return RedirectResponse(f"/cases/{created.case.ref}", status_code=303)
