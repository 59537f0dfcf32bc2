"""HTTP shapes for RFOs."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field

from caseapi.cases.enums import RootCauseCategory
from caseapi.core.wire import shown_to_customers

if TYPE_CHECKING:
    from caseapi.rfo.service import RfoView

MAX_TEXT = 20_000


class RfoFormat(StrEnum):
    JSON = "json"
    MD = "md"
    PDF = "pdf"


_PUBLISHED: Final = shown_to_customers("in the RFO once it is published")


class RfoUpdate(BaseModel):
    """Fields the engineer writes on the draft; omitted fields are left unchanged."""

    model_config = ConfigDict(extra="forbid")

    root_cause_category: RootCauseCategory | None = None
    root_cause: Annotated[str | None, _PUBLISHED] = Field(default=None, max_length=MAX_TEXT)
    corrective_actions: Annotated[str | None, _PUBLISHED] = Field(default=None, max_length=MAX_TEXT)
    preventive_actions: Annotated[str | None, _PUBLISHED] = Field(default=None, max_length=MAX_TEXT)
    #: Why no preventive action applies; publishing needs this or ``preventive_actions``.
    preventive_not_applicable: Annotated[str | None, _PUBLISHED] = Field(
        default=None, max_length=MAX_TEXT
    )


class RfoPublic(BaseModel):
    """One RFO version: the engineer's part and the generated ``facts``.

    ``status`` is ``draft`` or ``published``; ``saved`` is false for a draft that
    exists only as a preview (nobody has written to it yet). ``facts`` holds impact
    start/end/duration, detection, opened, first response, escalations, restored,
    solved, services, sites, the customer-facing timeline in chronological order, the
    NTU's latest probe figures (``probe``: RTT and jitter in ms, loss in %, or null)
    and ``incident_ref`` on a case linked to an upstream incident; frozen once
    published.
    """

    model_config = ConfigDict(frozen=True)

    case_ref: str
    version: int
    status: str
    saved: bool
    root_cause_category: str | None
    root_cause: str | None
    corrective_actions: str | None
    preventive_actions: str | None
    preventive_not_applicable: str | None
    facts: dict[str, Any]
    created_at: datetime | None
    created_by: str | None
    updated_at: datetime | None
    updated_by: str | None
    published_at: datetime | None
    published_by: str | None


def to_public(view: RfoView) -> RfoPublic:
    """Shape a service view for the API (and for the Markdown and PDF renderings)."""
    row = view.row
    return RfoPublic(
        case_ref=view.case_ref,
        version=view.version,
        status="published" if view.published else "draft",
        saved=row is not None,
        root_cause_category=row.root_cause_category if row else None,
        root_cause=row.root_cause if row else None,
        corrective_actions=row.corrective_actions if row else None,
        preventive_actions=row.preventive_actions if row else None,
        preventive_not_applicable=row.preventive_not_applicable if row else None,
        facts=view.facts,
        created_at=row.created_at if row else None,
        created_by=row.created_by if row else None,
        updated_at=row.updated_at if row else None,
        updated_by=row.updated_by if row else None,
        published_at=row.published_at if row else None,
        published_by=row.published_by if row else None,
    )
