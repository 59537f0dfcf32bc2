"""HTTP routes for case attachments (customers and staff; not ``service`` callers).

The upload is read by ``caseapi.attachments.upload`` after the caller and the case
are checked, not by FastAPI's form parsing (which would read it all first); its
request body is described in the OpenAPI document by hand.

Downloads are always ``Content-Disposition: attachment`` with
``X-Content-Type-Options: nosniff`` and a sandboxing ``Content-Security-Policy``;
the recorded type is sent only for a few safe ones (``names.SAFE_TYPES``), anything
else (HTML, SVG, unknown) as ``application/octet-stream``.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Request, Response

from caseapi.api.openapi import errors
from caseapi.attachments.errors import TooManyAttachmentsError
from caseapi.attachments.names import content_disposition, served_type
from caseapi.attachments.schemas import AttachmentPublic, AttachmentsPublic
from caseapi.attachments.service import AttachmentService, Download
from caseapi.attachments.upload import read_upload
from caseapi.auth.deps import CaseParticipant
from caseapi.comments.errors import CommentRefusedError
from caseapi.core.deps import RowId

router = APIRouter(prefix="/v1/cases", tags=["attachments"])

#: The path of the upload, as ``BodyLimit`` matches it (a reference has no slash).
UPLOAD_PATH: Final = r"/v1/cases/[^/]+/attachments"

_UPLOAD_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "visibility": {
                            "type": "string",
                            "enum": ["public", "internal"],
                            "default": "public",
                        },
                        "comment": {"type": "string", "maxLength": 20_000},
                    },
                }
            }
        },
    }
}


async def get_attachment_service(request: Request) -> AttachmentService:
    """Return the attachment service built by ``create_app``."""
    service: AttachmentService = request.app.state.attachment_service
    return service


AttachmentServiceDep = Annotated[AttachmentService, Depends(get_attachment_service)]


@router.post(
    "/{ref}/attachments",
    status_code=201,
    openapi_extra=_UPLOAD_BODY,
    responses=errors(TooManyAttachmentsError, CommentRefusedError),
)
async def add_attachment(
    ref: str, request: Request, principal: CaseParticipant, service: AttachmentServiceDep
) -> AttachmentPublic:
    """Attach a file (multipart `file`, optional `visibility` and `comment`) to a case.

    Limits: `attachments.max_size` per file (413 `attachment_too_large`, refused
    while it arrives) and `attachments.max_per_case` (409 `too_many_attachments`).
    `comment` text adds a comment carrying the file. Customers attach public files
    to their own open cases only.
    """
    await service.check_upload(principal=principal, ref=ref)
    form = await read_upload(request.headers, request.stream(), max_size=service.max_size)
    attachment = await service.upload(
        principal=principal,
        ref=ref,
        filename=form.file.filename,
        content_type=form.file.content_type,
        data=form.file.data,
        visibility=form.visibility,
        comment=form.comment,
    )
    return AttachmentPublic.from_attachment(attachment)


@router.get("/{ref}/attachments")
async def list_attachments(
    ref: str, principal: CaseParticipant, service: AttachmentServiceDep
) -> AttachmentsPublic:
    """List a case's attachments, oldest first; customers see public ones only."""
    attachments = await service.list_attachments(principal=principal, ref=ref)
    return AttachmentsPublic(
        ref=ref,
        data=[AttachmentPublic.from_attachment(a) for a in attachments],
        count=len(attachments),
    )


@router.get(
    "/{ref}/attachments/{attachment_id}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def download_attachment(
    ref: str, attachment_id: RowId, principal: CaseParticipant, service: AttachmentServiceDep
) -> Response:
    """Download an attachment's bytes, always as a download (never shown inline)."""
    download = await service.download(principal=principal, ref=ref, attachment_id=attachment_id)
    return download_response(download)


def download_response(download: Download) -> Response:
    """An attachment's bytes as a download, never shown inline (the API's and the
    portal's answer)."""
    attachment = download.attachment
    digest = base64.b64encode(bytes.fromhex(attachment.sha256)).decode()
    return Response(
        download.data,
        media_type=served_type(attachment.content_type),
        headers={
            "Content-Disposition": content_disposition(attachment.filename),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
            # RFC 9530: the client can check what it got against what was stored.
            "Repr-Digest": f"sha-256=:{digest}:",
        },
    )
