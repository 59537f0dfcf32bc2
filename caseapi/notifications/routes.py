"""Webhook subscriptions (``/v1/webhooks``) and the NOC's view of deliveries.

Customers manage their own subscriptions; engineers and admins manage anyone's;
another customer's subscription is answered 404, and a customer naming another
customer (``customer_id`` in a body or the query) is 403 ``customer_mismatch``.
``GET /v1/notifications`` is for staff (``?state=failed`` is the NOC's list of what
did not get through).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from caseapi.auth.deps import StaffPrincipal, require_roles
from caseapi.auth.principal import STAFF_ROLES, Principal, Role
from caseapi.clock import SystemClock
from caseapi.core.deps import RowId
from caseapi.notifications.enums import DeliveryState
from caseapi.notifications.schemas import (
    DeliveriesPublic,
    WebhookCreate,
    WebhookPublic,
    WebhookRotate,
    WebhooksPublic,
    WebhookUpdate,
    WebhookWithSecret,
)
from caseapi.notifications.service import DeliveryService, WebhookService

router = APIRouter(tags=["notifications"])

Reader = Annotated[Principal, Depends(require_roles(Role.CUSTOMER, *STAFF_ROLES))]
Writer = Annotated[Principal, Depends(require_roles(Role.CUSTOMER, Role.ENGINEER, Role.ADMIN))]
Operator = Annotated[Principal, Depends(require_roles(Role.NOC, Role.ADMIN))]


async def get_webhook_service(request: Request) -> WebhookService:
    """``app.state.webhook_service``, built on first use when the app has none."""
    service: WebhookService | None = getattr(request.app.state, "webhook_service", None)
    if service is None:
        service = WebhookService(sessionmaker=request.app.state.sessionmaker, clock=SystemClock())
        request.app.state.webhook_service = service
    return service


async def get_delivery_service(request: Request) -> DeliveryService:
    """``app.state.delivery_service``, built on first use when the app has none."""
    service: DeliveryService | None = getattr(request.app.state, "delivery_service", None)
    if service is None:
        service = DeliveryService(sessionmaker=request.app.state.sessionmaker, clock=SystemClock())
        request.app.state.delivery_service = service
    return service


WebhookServiceDep = Annotated[WebhookService, Depends(get_webhook_service)]
DeliveryServiceDep = Annotated[DeliveryService, Depends(get_delivery_service)]


@router.post("/v1/webhooks", status_code=status.HTTP_201_CREATED)
async def create_webhook(
    body: WebhookCreate, principal: Writer, service: WebhookServiceDep
) -> WebhookWithSecret:
    """Subscribe an endpoint; the signing secret is in this response only."""
    return await service.create(principal=principal, body=body)


@router.get("/v1/webhooks")
async def list_webhooks(
    principal: Reader,
    service: WebhookServiceDep,
    customer_id: Annotated[str | None, Query(max_length=64)] = None,
) -> WebhooksPublic:
    """List webhook subscriptions (a customer sees its own)."""
    data = await service.list(principal=principal, customer_id=customer_id)
    return WebhooksPublic(data=data, count=len(data))


@router.get("/v1/webhooks/{subscription_id}")
async def get_webhook(
    subscription_id: RowId, principal: Reader, service: WebhookServiceDep
) -> WebhookPublic:
    """Show one webhook subscription (never its secret)."""
    return await service.get(principal=principal, subscription_id=subscription_id)


@router.patch("/v1/webhooks/{subscription_id}")
async def update_webhook(
    subscription_id: RowId, body: WebhookUpdate, principal: Writer, service: WebhookServiceDep
) -> WebhookPublic:
    """Change a subscription's URL, event types, description or active flag."""
    return await service.update(principal=principal, subscription_id=subscription_id, body=body)


@router.delete("/v1/webhooks/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(
    subscription_id: RowId, principal: Writer, service: WebhookServiceDep
) -> Response:
    """Delete a subscription; its pending deliveries fail as undeliverable."""
    await service.delete(principal=principal, subscription_id=subscription_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/v1/webhooks/{subscription_id}/rotate")
async def rotate_webhook_secret(
    subscription_id: RowId,
    principal: Writer,
    service: WebhookServiceDep,
    body: WebhookRotate | None = None,
) -> WebhookWithSecret:
    """Issue a new secret; the old one keeps signing during the overlap."""
    return await service.rotate(
        principal=principal,
        subscription_id=subscription_id,
        overlap_seconds=body.overlap_seconds if body is not None else None,
    )


@router.get("/v1/notifications")
async def list_notifications(
    principal: StaffPrincipal,
    service: DeliveryServiceDep,
    state: DeliveryState | None = None,
    customer_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeliveriesPublic:
    """List notification deliveries, newest first, with backlog counts by state."""
    return await service.list(state=state, customer_id=customer_id, limit=limit)


@router.post("/v1/notifications/{delivery_id}/retry", status_code=status.HTTP_204_NO_CONTENT)
async def retry_notification(
    delivery_id: RowId, principal: Operator, service: DeliveryServiceDep
) -> Response:
    """Queue a failed delivery again with a fresh attempt budget."""
    await service.retry(delivery_id=delivery_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
