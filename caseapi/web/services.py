"""The app's services as every console area reaches them (``app.state``, set by
``create_app``): the same objects the ``/v1`` routes call."""

from __future__ import annotations

from fastapi import Request

from caseapi.attachments.service import AttachmentService
from caseapi.cases.service import CaseService
from caseapi.comments.service import CommentService
from caseapi.maintenance.routes import get_maintenance_service
from caseapi.maintenance.service import MaintenanceService
from caseapi.replies.service import ReplyService
from caseapi.rfo.service import RfoService


def cases(request: Request) -> CaseService:
    service: CaseService = request.app.state.case_service
    return service


def comments(request: Request) -> CommentService:
    service: CommentService = request.app.state.comment_service
    return service


def replies(request: Request) -> ReplyService:
    service: ReplyService = request.app.state.reply_service
    return service


def rfos(request: Request) -> RfoService:
    service: RfoService = request.app.state.rfo_service
    return service


def attachments(request: Request) -> AttachmentService:
    service: AttachmentService = request.app.state.attachment_service
    return service


def maintenance(request: Request) -> MaintenanceService:
    """The API's own accessor: the app's service, or the default one built on first use."""
    return get_maintenance_service(request)
