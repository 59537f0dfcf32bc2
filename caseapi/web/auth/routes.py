"""The console's `auth` pages: sign-in and sign-out, the person's own account, and
the admin's user pages."""

from __future__ import annotations

from fastapi import APIRouter

from caseapi.web.auth.account import router as account_router
from caseapi.web.auth.admin import router as admin_router
from caseapi.web.auth.login import router as login_router

router = APIRouter(include_in_schema=False)
router.include_router(login_router)
router.include_router(account_router)
router.include_router(admin_router)
