"""HTTP shapes for comments."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

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


class CommentPublic(BaseModel):
    """One comment as the API shows it."""

    model_config = ConfigDict(frozen=True)

    id: int
    created_at: datetime
    author: str
    author_role: str
    visibility: Visibility
    body: str

    @classmethod
    def from_comment(cls, comment: Comment) -> CommentPublic:
        """Build from a row."""
        return cls(
            id=comment.id,
            created_at=comment.created_at,
            author=comment.author,
            author_role=comment.author_role,
            visibility=Visibility(comment.visibility),
            body=comment.body,
        )


class CommentsPublic(BaseModel):
    """The comments of one case the caller may see, oldest first."""

    ref: str
    data: list[CommentPublic]
    count: int
