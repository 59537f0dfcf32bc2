"""HTTP shapes for RFOs."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field

from caseapi.cases.enums import RootCauseCategory
from caseapi.core.wire import shown_to_customers

MAX_TEXT = 20_000


class RfoFormat(StrEnum):
    JSON = "json"
    MD = "md"


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
    solved, services, sites and the customer-facing timeline in chronological order
    (and ``incident_ref`` on a case linked to an upstream incident); frozen once
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
