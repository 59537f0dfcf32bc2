"""HTTP shapes for attachments."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from caseapi.attachments.models import Attachment
from caseapi.comments.models import Visibility


class AttachmentPublic(BaseModel):
    """One attachment as the API lists it (the bytes: ``GET .../attachments/{id}``)."""

    model_config = ConfigDict(frozen=True)

    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    visibility: Visibility
    comment_id: int | None
    created_at: datetime
    uploaded_by: str
    source: str

    @classmethod
    def from_attachment(cls, attachment: Attachment) -> AttachmentPublic:
        """Build from a row."""
        return cls(
            id=attachment.id,
            filename=attachment.filename,
            content_type=attachment.content_type,
            size=attachment.size,
            sha256=attachment.sha256,
            visibility=Visibility.INTERNAL if attachment.internal else Visibility.PUBLIC,
            comment_id=attachment.comment_id,
            created_at=attachment.created_at,
            uploaded_by=attachment.uploaded_by,
            source=attachment.source,
        )


class AttachmentsPublic(BaseModel):
    """The attachments of one case the caller may see, oldest first."""

    ref: str
    data: list[AttachmentPublic]
    count: int
