"""The console's `workspace` pages: queues, the case page and its actions, the new
case form, NTU pages and maintenance pages (staff only)."""

from __future__ import annotations

from fastapi import APIRouter

from caseapi.web.workspace import filters as _filters  # noqa: F401  (registers them)
from caseapi.web.workspace.case import router as case_router
from caseapi.web.workspace.maintenance import router as maintenance_router
from caseapi.web.workspace.new_case import router as new_case_router
from caseapi.web.workspace.ntus import router as ntus_router
from caseapi.web.workspace.queues import router as queues_router

router = APIRouter(include_in_schema=False)
# Fixed paths before ``/cases/{ref}`` (``/cases/new``, ``/cases/fragment``).
router.include_router(queues_router)
router.include_router(new_case_router)
router.include_router(case_router)
router.include_router(ntus_router)
router.include_router(maintenance_router)
