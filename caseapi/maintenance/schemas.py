"""Pydantic shapes of the maintenance API (the edge; the service takes plain values)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from caseapi.core.wire import JsonTime, shown_to_customers
from caseapi.maintenance.enums import MaintenanceBehaviour, MaintenanceKind, MaintenanceState
from caseapi.maintenance.rules import NOT_NULL

ScopeId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
ScopeIds = Annotated[list[ScopeId], Field(max_length=10_000)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, Field(max_length=20_000)]
Impact = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)]
_SHOWN: Final = "in the window customers get (and in its notices)"
_TITLE: Final = shown_to_customers(f"the `title`, {_SHOWN}")
_DESCRIPTION: Final = shown_to_customers(f"the `description`, {_SHOWN}")
_IMPACT: Final = shown_to_customers(f"the `actual_impact`, {_SHOWN}")


class MaintenanceScope(BaseModel):
    """What a window covers; at least one list must be non-empty."""

    model_config = ConfigDict(extra="forbid")

    ntus: ScopeIds = Field(default_factory=list, description="NTU ids")
    nodes: ScopeIds = Field(
        default_factory=list, description="node (or NTU) ids; everything below them too"
    )
    customers: ScopeIds = Field(default_factory=list, description="all NTUs of these customers")
    services: ScopeIds = Field(default_factory=list, description="NTUs carrying these services")


class MaintenanceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Annotated[Title, _TITLE]
    description: Annotated[Description, _DESCRIPTION] = ""
    kind: MaintenanceKind
    behaviour: MaintenanceBehaviour = MaintenanceBehaviour.MUTE
    starts_at: JsonTime
    ends_at: JsonTime
    scope: MaintenanceScope


def _not_null(schema: dict[str, Any]) -> None:
    # Leaving a field out keeps it; null is refused (``rules.NOT_NULL``), so the
    # document offers only the value for these.
    for name in NOT_NULL:
        prop = schema["properties"][name]
        options = [option for option in prop.pop("anyOf", []) if option.get("type") != "null"]
        if len(options) == 1:
            prop.update(options[0])
        else:
            prop["anyOf"] = options


class MaintenanceUpdate(BaseModel):
    """Fields to change (leave out the others); which ones may change depends on the
    window's state. Only ``actual_impact`` may be null."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_not_null)

    title: Annotated[Title | None, _TITLE] = None
    description: Annotated[Description | None, _DESCRIPTION] = None
    behaviour: MaintenanceBehaviour | None = None
    starts_at: JsonTime | None = None
    ends_at: JsonTime | None = None
    scope: MaintenanceScope | None = None
    actual_impact: Annotated[Impact | None, _IMPACT] = None

    @field_validator(*sorted(NOT_NULL), mode="before")
    @classmethod
    def _refuse_null(cls, value: object) -> object:
        # A field left out keeps its value (defaults are not validated); null is
        # refused here, as the document says, before any other check of the request.
        if value is None:
            raise ValueError("must not be null (leave the field out to keep it)")
        return value


class MaintenanceComplete(BaseModel):
    model_config = ConfigDict(extra="forbid")

    actual_impact: Annotated[Impact, _IMPACT]


class MaintenanceCustomerView(BaseModel):
    """A window as a customer sees it: its scope is only the customer's own NTUs."""

    ref: str
    title: str
    description: str
    kind: MaintenanceKind
    emergency: bool
    behaviour: MaintenanceBehaviour
    state: MaintenanceState
    starts_at: datetime
    ends_at: datetime
    scope: MaintenanceScope
    cancelled_at: datetime | None
    completed_at: datetime | None
    actual_impact: str | None


class MaintenancePublic(MaintenanceCustomerView):
    """A window as staff see it."""

    version: int
    affected_ntu_count: int
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime
    cancelled_by: str | None
    completed_by: str | None


class MaintenancesPublic(BaseModel):
    data: list[MaintenancePublic | MaintenanceCustomerView]
    count: int
