"""HTTP shapes for comments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from caseapi.attachments.models import Attachment
from caseapi.comments.models import Comment, Visibility
from caseapi.core.wire import shown_to_customers

MAX_BODY: int = 20_000


class CommentCreate(BaseModel):
    """A new comment; ``public`` (the default) is shown to the customer."""

    model_config = ConfigDict(extra="forbid")

    body: Annotated[
        str,
        Field(min_length=1, max_length=MAX_BODY),
        shown_to_customers("when `visibility` is `public`; internal comments never are"),
    ]
    visibility: Visibility = Visibility.PUBLIC


class AttachmentRef(BaseModel):
    """An attachment a comment carries: ``GET /v1/cases/{ref}/attachments/{id}``."""

    model_config = ConfigDict(frozen=True)

    id: int
    filename: str
    size: int


class CommentPublic(BaseModel):
    """One comment as the API shows it."""

    model_config = ConfigDict(frozen=True)

    id: int
    created_at: datetime
    author: str
    author_role: str
    visibility: Visibility
    body: str
    attachments: list[AttachmentRef] = []

    @classmethod
    def from_comment(
        cls, comment: Comment, attachments: Sequence[Attachment] = ()
    ) -> CommentPublic:
        """Build from a row and the attachments it carries."""
        return cls(
            id=comment.id,
            created_at=comment.created_at,
            author=comment.author,
            author_role=comment.author_role,
            visibility=Visibility(comment.visibility),
            body=comment.body,
            attachments=[
                AttachmentRef(id=a.id, filename=a.filename, size=a.size) for a in attachments
            ],
        )


class CommentsPublic(BaseModel):
    """The comments of one case the caller may see, oldest first."""

    ref: str
    data: list[CommentPublic]
    count: int
