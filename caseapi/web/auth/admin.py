"""``/admin/users``: the admin's list of accounts, and each account's page.

Create an account, disable or enable it, set a new password for it, change its role
(and customer). The rules (what a role needs, who may not demote or disable
themselves, which sessions end) are the users service's; a refusal is shown next to
the form it came from, with what was typed kept (never a password).
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from caseapi.users.errors import EmailTakenError, UserRequestError
from caseapi.users.passwords import MIN_LENGTH
from caseapi.users.service import LANGUAGES, USER_ROLES
from caseapi.web.auth.login import users_of
from caseapi.web.deps import AdminForm, AdminPage
from caseapi.web.render import render
from caseapi.web.session import WebSession

router = APIRouter(include_in_schema=False)

USERS_PATH: Final = "/admin/users"
Done = Literal["created", "disabled", "enabled", "password", "role"]
_DONE_TEXT: Final = {
    "created": "The account is created.",
    "disabled": "The account is disabled; its sessions have ended.",
    "enabled": "The account is enabled.",
    "password": "The new password is set; the account's sessions have ended.",
    "role": "The role is changed; the account's sessions have ended.",
}
_CHOICES: Final = {"roles": [r.value for r in USER_ROLES], "languages": LANGUAGES}


async def _list_page(
    request: Request,
    *,
    form: dict[str, Any] | None = None,
    error: str | None = None,
    flash: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    users = await users_of(request).list_users()
    return render(
        request,
        "auth/users.html",
        {
            "users": users,
            "form": {"role": "engineer", "timezone": "UTC", "language": "en", **(form or {})},
            "error": error,
            "flash": flash,
            "min_length": MIN_LENGTH,
            **_CHOICES,
        },
        status_code=status,
    )


async def _user_page(
    request: Request,
    user_id: int,
    *,
    errors: dict[str, str] | None = None,
    flash: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    user = await users_of(request).get_user(user_id)
    return render(
        request,
        "auth/user.html",
        {
            "user": user,
            "errors": errors or {},
            "flash": flash,
            "min_length": MIN_LENGTH,
            **_CHOICES,
        },
        status_code=status,
    )


@router.get(USERS_PATH)
async def users_page(request: Request, web: AdminPage, done: Done | None = None) -> HTMLResponse:
    """Every account, and the form for a new one."""
    return await _list_page(request, flash=_DONE_TEXT[done] if done else None)


@router.post(USERS_PATH)
async def create_user(
    request: Request,
    web: AdminForm,
    email: Annotated[str, Form(max_length=1000)] = "",
    display_name: Annotated[str, Form(max_length=1000)] = "",
    role: Annotated[str, Form(max_length=32)] = "",
    customer: Annotated[str, Form(max_length=200)] = "",
    timezone: Annotated[str, Form(max_length=200)] = "UTC",
    language: Annotated[str, Form(max_length=16)] = "en",
    password: Annotated[str, Form(max_length=4096)] = "",
) -> Response:
    """Create an account with the password the admin gives."""
    try:
        await users_of(request).create_user(
            email=email,
            display_name=display_name,
            password=password,
            role=role,
            customer_id=customer.strip() or None,
            timezone=timezone,
            language=language,
        )
    except (UserRequestError, EmailTakenError) as exc:
        form = {
            "email": email,
            "display_name": display_name,
            "role": role,
            "customer": customer,
            "timezone": timezone,
            "language": language,
        }
        status = 409 if isinstance(exc, EmailTakenError) else 422
        return await _list_page(request, form=form, error=str(exc), status=status)
    return RedirectResponse(USERS_PATH + "?done=created", status_code=303)


@router.get(USERS_PATH + "/{user_id}")
async def user_page(
    request: Request, web: AdminPage, user_id: int, done: Done | None = None
) -> HTMLResponse:
    """One account: its role, password and status."""
    return await _user_page(request, user_id, flash=_DONE_TEXT[done] if done else None)


def _done(user_id: int, what: str) -> RedirectResponse:
    return RedirectResponse(f"{USERS_PATH}/{user_id}?done={what}", status_code=303)


@router.post(USERS_PATH + "/{user_id}/disable")
async def disable_user(request: Request, web: AdminForm, user_id: int) -> Response:
    """Disable the account; its sessions end at once."""
    return await _set_disabled(request, web, user_id, disabled=True)


@router.post(USERS_PATH + "/{user_id}/enable")
async def enable_user(request: Request, web: AdminForm, user_id: int) -> Response:
    """Enable the account again."""
    return await _set_disabled(request, web, user_id, disabled=False)


async def _set_disabled(
    request: Request, web: WebSession, user_id: int, *, disabled: bool
) -> Response:
    try:
        await users_of(request).set_disabled(user_id, disabled=disabled, by_user_id=web.user_id)
    except UserRequestError as exc:
        return await _user_page(request, user_id, errors={"status": str(exc)}, status=422)
    return _done(user_id, "disabled" if disabled else "enabled")


@router.post(USERS_PATH + "/{user_id}/password")
async def reset_password(
    request: Request,
    web: AdminForm,
    user_id: int,
    new_password: Annotated[str, Form(max_length=4096)] = "",
) -> Response:
    """Set a new password the admin gives; the account's sessions end."""
    try:
        await users_of(request).reset_password(user_id, new=new_password)
    except UserRequestError as exc:
        return await _user_page(request, user_id, errors={"password": str(exc)}, status=422)
    return _done(user_id, "password")


@router.post(USERS_PATH + "/{user_id}/role")
async def change_role(
    request: Request,
    web: AdminForm,
    user_id: int,
    role: Annotated[str, Form(max_length=32)] = "",
    customer: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Change the account's role (a customer contact's customer too)."""
    try:
        await users_of(request).set_role(
            user_id, role=role, customer_id=customer.strip() or None, by_user_id=web.user_id
        )
    except UserRequestError as exc:
        return await _user_page(request, user_id, errors={"role": str(exc)}, status=422)
    return _done(user_id, "role")
