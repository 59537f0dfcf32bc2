"""Request and response bodies of ``/v1/mail/held``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from caseapi.comments.models import Visibility
from caseapi.core.wire import internal
from caseapi.mail.held import HeldMailView
from caseapi.mail.inbound import InboundMail

Name = Annotated[str, Field(min_length=1, max_length=64)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]


class InboundMailPublic(BaseModel):
    """An inbound mail as staff see it in the held list."""

    id: int
    mailbox: str
    uid: int | None
    message_id: str
    received_at: datetime
    sender: str
    subject: str
    size: int
    status: str
    reason: str
    note: str | None
    case: str | None
    resolved_at: datetime | None
    resolved_by: str | None

    @classmethod
    def of(cls, mail: InboundMail, case_ref: str | None) -> InboundMailPublic:
        return cls(
            id=mail.id,
            mailbox=mail.mailbox,
            uid=mail.uid,
            message_id=mail.message_id,
            received_at=mail.received_at,
            sender=mail.sender,
            subject=mail.subject,
            size=mail.size,
            status=mail.status,
            reason=mail.reason,
            note=mail.note,
            case=case_ref,
            resolved_at=mail.resolved_at,
            resolved_by=mail.resolved_by,
        )


class InboundMailDetail(InboundMailPublic):
    """One inbound mail with its decoded text (``null`` when its raw mail was not kept)."""

    text: str | None
    attachments: list[str]
    auto: str | None
    defects: list[str]

    @classmethod
    def of_view(cls, view: HeldMailView) -> InboundMailDetail:
        base = InboundMailPublic.of(view.mail, view.case_ref).model_dump()
        return cls(
            **base,
            text=view.text,
            attachments=list(view.attachments),
            auto=view.auto,
            defects=list(view.defects),
        )


class InboundMailsPublic(BaseModel):
    """One page; ``count`` is the number matching the filters on all pages."""

    data: list[InboundMailPublic]
    count: int
    next_cursor: str | None


class AttachBody(BaseModel):
    """Append the mail to case ``case`` as a comment."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["attach"] = internal("what staff do with a held mail")
    case: Name
    visibility: Visibility


class OpenCaseBody(BaseModel):
    """Open a new case with the mail for customer ``customer``."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["open_case"] = internal("what staff do with a held mail")
    customer: Name


class DiscardBody(BaseModel):
    """Drop the mail, saying why."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["discard"] = internal("what staff do with a held mail")
    reason: ShortText = internal("why staff dropped a held mail (audit and the held list)")


ReleaseBody = Annotated[AttachBody | OpenCaseBody | DiscardBody, Field(discriminator="action")]
