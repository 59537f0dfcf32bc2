"""``/account``: a person's own password, time zone and language; sign out everywhere."""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from caseapi.users.errors import UserRequestError
from caseapi.users.models import User
from caseapi.users.passwords import MIN_LENGTH
from caseapi.users.sessions import token_hash
from caseapi.web.auth.cookies import clear_session_cookie
from caseapi.web.auth.login import database_store, users_of
from caseapi.web.deps import AnyForm, AnyPage
from caseapi.web.errors import LOGIN_PATH
from caseapi.web.render import render
from caseapi.web.session import SESSION_COOKIE, WebSession

router = APIRouter(include_in_schema=False)

ACCOUNT_PATH: Final = "/account"
LANGUAGE_NAMES: Final = (("en", "English"), ("it", "Italiano"))
Done = Literal["preferences", "password"]
_DONE_TEXT: Final = {
    "preferences": "Your preferences are saved.",
    "password": "Your password is changed; your other sessions have ended.",
}


async def _account_page(
    request: Request,
    web: WebSession,
    *,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    flash: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    user: User | None = None
    if web.user_id is not None:
        user = await users_of(request).get_user(web.user_id)
    values = {"timezone": web.timezone, "language": web.language, **(form or {})}
    return render(
        request,
        "auth/account.html",
        {
            "user": user,
            "form": values,
            "errors": errors or {},
            "flash": flash,
            "languages": LANGUAGE_NAMES,
            "min_length": MIN_LENGTH,
        },
        status_code=status,
    )


def _user_id(web: WebSession) -> int:
    if web.user_id is None:
        raise UserRequestError("account", "this session belongs to no account")
    return web.user_id


@router.get(ACCOUNT_PATH)
async def account(request: Request, web: AnyPage, done: Done | None = None) -> HTMLResponse:
    """The signed-in person's own settings."""
    return await _account_page(request, web, flash=_DONE_TEXT[done] if done else None)


@router.post(ACCOUNT_PATH + "/preferences")
async def save_preferences(
    request: Request,
    web: AnyForm,
    timezone: Annotated[str, Form(max_length=200)] = "",
    language: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """Change the time zone and language pages are shown in."""
    try:
        await users_of(request).update_preferences(
            _user_id(web), timezone=timezone, language=language
        )
    except UserRequestError as exc:
        return await _account_page(
            request,
            web,
            form={"timezone": timezone, "language": language},
            errors={"preferences": str(exc)},
            status=422,
        )
    return RedirectResponse(ACCOUNT_PATH + "?done=preferences", status_code=303)


@router.post(ACCOUNT_PATH + "/password")
async def change_password(
    request: Request,
    web: AnyForm,
    current_password: Annotated[str, Form(max_length=4096)] = "",
    new_password: Annotated[str, Form(max_length=4096)] = "",
    new_password_again: Annotated[str, Form(max_length=4096)] = "",
) -> Response:
    """Change one's own password (the current one required); other sessions end."""
    try:
        if new_password != new_password_again:
            raise UserRequestError("new_password_again", "the two new passwords differ")
        token = request.cookies.get(SESSION_COOKIE)
        await users_of(request).change_own_password(
            _user_id(web),
            current=current_password,
            new=new_password,
            keep_token_hash=token_hash(token) if token else None,
        )
    except UserRequestError as exc:
        return await _account_page(request, web, errors={"password": str(exc)}, status=422)
    return RedirectResponse(ACCOUNT_PATH + "?done=password", status_code=303)


@router.post(ACCOUNT_PATH + "/signout-everywhere")
async def sign_out_everywhere(request: Request, web: AnyForm) -> RedirectResponse:
    """End every session of this account, this one too."""
    await database_store(request).revoke_all(_user_id(web))
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    clear_session_cookie(request, response)
    return response
