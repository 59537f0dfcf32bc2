"""HTTP schemas of webhook subscriptions and deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

from caseapi.core.wire import JsonBool, JsonInt, shown_to_customers
from caseapi.notifications.enums import Channel, DeliveryState, NotificationKind


def _check_types(values: list[str]) -> list[str]:
    unknown = sorted(set(values) - {kind.value for kind in NotificationKind})
    if unknown:
        raise ValueError(f"unknown event types: {', '.join(unknown)}")
    return sorted(set(values))


_OWNER: Final = shown_to_customers("to the customer whose webhook it is")
#: A notification kind; documented as the enum ``_check_types`` enforces.
EventType = Annotated[
    str, Field(json_schema_extra={"enum": [kind.value for kind in NotificationKind]})
]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl
    #: Notification kinds to receive; empty means all.
    event_types: list[EventType] = Field(default_factory=list)
    description: Annotated[str, _OWNER] = Field(default="", max_length=200)
    #: Staff must name the customer; a customer may omit it (always its own).
    customer_id: str | None = Field(default=None, max_length=64)

    _types = field_validator("event_types")(_check_types)


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl | None = None
    event_types: list[EventType] | None = None
    description: Annotated[str | None, _OWNER] = Field(default=None, max_length=200)
    active: JsonBool | None = None

    @field_validator("event_types")
    @classmethod
    def _types(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else _check_types(values)


class WebhookRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: How long the old secret keeps signing (both signatures are sent meanwhile).
    overlap_seconds: JsonInt | None = Field(default=None, ge=0, le=7 * 86400)


class WebhookPublic(BaseModel):
    id: int
    customer_id: str
    url: str
    event_types: list[str]
    description: str
    active: bool
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(WebhookPublic):
    """Returned once, by create and rotate: store ``secret`` now."""

    secret: str


class WebhooksPublic(BaseModel):
    data: list[WebhookPublic]
    count: int


class DeliveryPublic(BaseModel):
    id: int
    event_id: str
    kind: str
    customer_id: str
    case_ref: str | None
    channel: Channel
    target: str
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None
    created_at: datetime


class DeliveriesPublic(BaseModel):
    data: list[DeliveryPublic]
    count: int
    backlog: dict[str, int]
