"""HTTP shapes for NTUs and their current status."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from caseapi.ntus.repository import NtuRow


class CustomerRef(BaseModel):
    """The customer an NTU belongs to (``name`` is null if the customer row is missing)."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str | None


class NtuPublic(BaseModel):
    """An NTU from the inventory with its current status (``unknown`` if never judged)."""

    model_config = ConfigDict(frozen=True)

    id: str
    customer: CustomerRef
    service_id: str | None
    site: str | None
    address: str
    status: str

    @classmethod
    def from_row(cls, row: NtuRow) -> NtuPublic:
        """Build from a repository row."""
        return cls(
            id=row.ntu.id,
            customer=CustomerRef(
                id=row.ntu.customer_id,
                name=row.customer.name if row.customer is not None else None,
            ),
            service_id=row.ntu.service_id,
            site=row.ntu.site,
            address=row.ntu.address,
            status=row.status,
        )


class NtusPublic(BaseModel):
    """One page of NTUs; ``count`` is the number matching the filters on all pages."""

    data: list[NtuPublic]
    count: int
    next_cursor: str | None


class NtuStatusPublic(BaseModel):
    """The detector's current view of one NTU; RTT and jitter in seconds, loss 0..1."""

    model_config = ConfigDict(frozen=True)

    ntu_id: str
    status: str
    since: datetime | None
    outage_start: datetime | None
    last_observation_at: datetime | None
    last_success_at: datetime | None
    rtt_avg: float | None
    loss: float | None
    jitter: float | None
    case_ref: str | None

    @classmethod
    def from_row(cls, row: NtuRow, *, case_ref: str | None) -> NtuStatusPublic:
        """Build from a repository row and the NTU's open case, if any."""
        state = row.state
        return cls(
            ntu_id=row.ntu.id,
            status=row.status,
            since=state.since if state else None,
            outage_start=state.outage_start if state else None,
            last_observation_at=state.last_observation_at if state else None,
            last_success_at=state.last_success_at if state else None,
            rtt_avg=state.rtt_avg if state else None,
            loss=state.loss if state else None,
            jitter=state.jitter if state else None,
            case_ref=case_ref,
        )
