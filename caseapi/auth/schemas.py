"""HTTP shapes for API keys. The secret appears only in ``ApiKeyCreated``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from caseapi.auth.models import ApiKey
from caseapi.auth.principal import Role
from caseapi.auth.service import CreatedKey, key_status
from caseapi.core.wire import JsonTime, internal


class ApiKeyCreate(BaseModel):
    """A request for a new key; ``customer_id`` is required for (only) the customer role."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, internal("keys are managed by administrators")] = Field(
        min_length=1, max_length=200
    )
    role: Role
    customer_id: str | None = Field(default=None, max_length=64)
    expires_at: JsonTime | None = None


class ApiKeyPublic(BaseModel):
    """A key as listed: its public prefix and metadata, never the secret or its hash."""

    model_config = ConfigDict(frozen=True)

    id: int
    prefix: str
    name: str
    role: Role
    customer_id: str | None
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    status: str

    @classmethod
    def from_key(cls, key: ApiKey, *, now: datetime) -> ApiKeyPublic:
        """Build from a row; ``status`` is judged at ``now``."""
        return cls(
            id=key.id,
            prefix=key.prefix,
            name=key.name,
            role=Role(key.role),
            customer_id=key.customer_id,
            created_by=key.created_by,
            created_at=key.created_at,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
            status=key_status(key, now=now),
        )


class ApiKeyCreated(ApiKeyPublic):
    """A new key with its secret: shown once, store it now."""

    key: str

    @classmethod
    def from_created(cls, created: CreatedKey, *, now: datetime) -> ApiKeyCreated:
        """Build from the service's result."""
        public = ApiKeyPublic.from_key(created.key, now=now)
        return cls(**public.model_dump(), key=created.secret)


class ApiKeysPublic(BaseModel):
    """Every API key."""

    data: list[ApiKeyPublic]
    count: int
