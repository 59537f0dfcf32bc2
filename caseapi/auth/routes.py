"""HTTP routes for API keys (admin only)."""

from __future__ import annotations

from fastapi import APIRouter

from caseapi.auth.deps import AdminPrincipal, ApiKeyServiceDep
from caseapi.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, ApiKeysPublic
from caseapi.core.deps import RowId

router = APIRouter(prefix="/v1/apikeys", tags=["apikeys"])


@router.post("", status_code=201)
async def create_api_key(
    body: ApiKeyCreate, principal: AdminPrincipal, service: ApiKeyServiceDep
) -> ApiKeyCreated:
    """Create an API key; the response is the only time the secret is shown."""
    created = await service.create_key(
        name=body.name,
        role=body.role,
        customer_id=body.customer_id,
        expires_at=body.expires_at,
        created_by=principal.actor,
    )
    return ApiKeyCreated.from_created(created, now=service.clock.now())


@router.get("")
async def list_api_keys(principal: AdminPrincipal, service: ApiKeyServiceDep) -> ApiKeysPublic:
    """List every API key (prefix and metadata; never a secret)."""
    keys = await service.list_keys()
    now = service.clock.now()
    return ApiKeysPublic(
        data=[ApiKeyPublic.from_key(key, now=now) for key in keys], count=len(keys)
    )


@router.delete("/{key_id}")
async def revoke_api_key(
    key_id: RowId, principal: AdminPrincipal, service: ApiKeyServiceDep
) -> ApiKeyPublic:
    """Revoke an API key at once; revoking it again changes nothing."""
    key = await service.revoke_key(key_id)
    return ApiKeyPublic.from_key(key, now=service.clock.now())
