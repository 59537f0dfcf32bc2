"""Pydantic shapes of the maintenance API (the edge; the service takes plain values)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from caseapi.core.wire import JsonTime, shown_to_customers
from caseapi.maintenance.enums import MaintenanceBehaviour, MaintenanceKind, MaintenanceState

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


class MaintenanceUpdate(BaseModel):
    """Fields to change; which ones may change depends on the window's state."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[Title | None, _TITLE] = None
    description: Annotated[Description | None, _DESCRIPTION] = None
    behaviour: MaintenanceBehaviour | None = None
    starts_at: JsonTime | None = None
    ends_at: JsonTime | None = None
    scope: MaintenanceScope | None = None
    actual_impact: Annotated[Impact | None, _IMPACT] = None


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
