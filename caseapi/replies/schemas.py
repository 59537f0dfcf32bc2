"""HTTP shapes for canned replies."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from caseapi.comments.models import Visibility
from caseapi.core.wire import internal, shown_to_customers
from caseapi.replies.models import CannedReply
from caseapi.replies.render import PLACEHOLDERS

MAX_BODY: int = 20_000
_PLACEHOLDER_DOC = "; ".join(f"${{{k}}}: {v}" for k, v in PLACEHOLDERS.items())


class ReplyLanguage(StrEnum):
    EN = "en"
    IT = "it"


_Title = Annotated[str, Field(min_length=1, max_length=200)]
_Body = Annotated[str, Field(min_length=1, max_length=MAX_BODY)]
_TITLE = internal("staff pick replies by it; it is never sent")
_BODY = shown_to_customers(
    "as the comment a `public` reply posts, placeholders filled "
    f"(internal replies never are); placeholders: {_PLACEHOLDER_DOC}"
)


class ReplyCreate(BaseModel):
    """A new canned reply."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[_Title, _TITLE]
    body: Annotated[_Body, _BODY]
    language: ReplyLanguage = ReplyLanguage.EN
    visibility: Visibility = Visibility.PUBLIC


class ReplyUpdate(BaseModel):
    """Fields to change (absent ones keep their value)."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[_Title | None, _TITLE] = None
    body: Annotated[_Body | None, _BODY] = None
    language: ReplyLanguage | None = None
    visibility: Visibility | None = None


class ReplyPublic(BaseModel):
    """One canned reply."""

    model_config = ConfigDict(frozen=True)

    id: int
    title: str
    body: str
    language: str
    visibility: Visibility
    shipped_key: str | None
    updated_at: datetime
    updated_by: str

    @classmethod
    def from_row(cls, row: CannedReply) -> ReplyPublic:
        """Build from a row."""
        return cls(
            id=row.id,
            title=row.title,
            body=row.body,
            language=row.language,
            visibility=Visibility(row.visibility),
            shipped_key=row.shipped_key,
            updated_at=row.updated_at,
            updated_by=row.updated_by,
        )


class RepliesPublic(BaseModel):
    """Every canned reply, by title."""

    data: list[ReplyPublic]
    count: int
    #: The placeholders a body may use, with what each shows.
    placeholders: dict[str, str]


class ReplyPreview(BaseModel):
    """A reply filled with one case's fields (what sending it would post)."""

    reply_id: int
    ref: str
    language: str
    visibility: Visibility
    body: str
