"""Webhooks (Standard Webhooks): endpoints, the default secret, the delivery log, resends."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from wfrun.api import webhook_wire as hooks_wire
from wfrun.api import wire
from wfrun.api.contract.envelope import documented
from wfrun.api.contract.webhooks import (
    DeliveryData,
    DeliveryPage,
    EndpointData,
    EndpointList,
    SecretData,
)
from wfrun.api.deps import Page, PageSize, PrincipalDep, RuntimeDep
from wfrun.services import webhook_log, webhooks
from wfrun.services.webhooks import EndpointChange

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
Url = Field(min_length=1, max_length=2048)


class EndpointBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: StrictStr = Url
    events: list[StrictStr] | None = Field(None, max_length=32)
    description: StrictStr = Field("", max_length=500)


class UpdateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint_id: StrictStr = Field(min_length=1, max_length=64)
    url: StrictStr | None = Field(None, min_length=1, max_length=2048)
    events: list[StrictStr] | None = Field(None, max_length=32)
    description: StrictStr | None = Field(None, max_length=500)
    enabled: StrictBool | None = None


class EndpointIdBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint_id: StrictStr = Field(min_length=1, max_length=64)


class DeliveryIdBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delivery_id: StrictStr = Field(min_length=1, max_length=64)


@router.post(
    "/endpoints",
    summary="Add an endpoint; answers its secret once",
    **documented(EndpointData),
)
async def create(
    body: EndpointBody, runtime: RuntimeDep, principal: PrincipalDep
) -> dict[str, Any]:
    change = EndpointChange(url=body.url, events=body.events, description=body.description)
    endpoint, secret = await webhooks.create(
        runtime.db, runtime.webhook_box, runtime.webhook_policy, principal.account_id, change
    )
    return wire.ok(hooks_wire.endpoint(endpoint, secret=secret), "操作成功")


@router.get(
    "/endpoints",
    summary="The caller's endpoints (secrets are never shown again)",
    **documented(EndpointList),
)
async def list_endpoints(runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    items = await webhooks.list_all(runtime.db, principal.account_id)
    return wire.ok({"items": [hooks_wire.endpoint(e) for e in items], "total": len(items)})


@router.post(
    "/endpoints/update",
    summary="Change an endpoint (re-enables a disabled one)",
    **documented(EndpointData, 404),
)
async def update(body: UpdateBody, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    change = EndpointChange(
        url=body.url, events=body.events, description=body.description, enabled=body.enabled
    )
    endpoint = await webhooks.update(
        runtime.db, runtime.webhook_policy, principal.account_id, body.endpoint_id, change
    )
    return wire.ok(hooks_wire.endpoint(endpoint), "操作成功")


@router.post(
    "/endpoints/delete",
    summary="Delete an endpoint",
    **documented(EndpointData, 404, description="The deleted endpoint"),
)
async def delete(
    body: EndpointIdBody, runtime: RuntimeDep, principal: PrincipalDep
) -> dict[str, Any]:
    endpoint = await webhooks.delete(runtime.db, principal.account_id, body.endpoint_id)
    return wire.ok(hooks_wire.endpoint(endpoint), "操作成功")


@router.post(
    "/endpoints/rotate-secret",
    summary="New secret (answered once); the old one also signs for 24 h",
    **documented(EndpointData, 404, description="The endpoint with its new secret"),
)
async def rotate_secret(
    body: EndpointIdBody, runtime: RuntimeDep, principal: PrincipalDep
) -> dict[str, Any]:
    endpoint, secret = await webhooks.rotate(
        runtime.db, runtime.webhook_box, principal.account_id, body.endpoint_id
    )
    return wire.ok(hooks_wire.endpoint(endpoint, secret=secret), "操作成功")


@router.get(
    "/secret",
    summary="The account's default secret (signs callback_url deliveries)",
    **documented(SecretData),
)
async def secret(runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    value = await webhooks.default_secret(runtime.db, runtime.webhook_box, principal.account_id)
    return wire.ok({"secret": value})


@router.get(
    "/deliveries",
    summary="The delivery log: attempts, status, latency, excerpt",
    **documented(DeliveryPage, 404),
)
async def deliveries(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    endpoint_id: str | None = Query(None, min_length=1, max_length=64),
    run_order_id: str | None = Query(None, min_length=1, max_length=64),
    page: Page = 1,
    page_size: PageSize = 20,
) -> dict[str, Any]:
    items, total = await webhook_log.page(
        runtime.db,
        principal.account_id,
        endpoint_id=endpoint_id,
        run_id=run_order_id,
        page_no=page,
        size=page_size,
    )
    return wire.ok(wire.page([hooks_wire.delivery(i) for i in items], total, page, page_size))


@router.post(
    "/deliveries/resend",
    summary="Send a delivery again (same webhook-id)",
    **documented(DeliveryData, 404, description="The delivery, pending again"),
)
async def resend(
    body: DeliveryIdBody, runtime: RuntimeDep, principal: PrincipalDep
) -> dict[str, Any]:
    item = await webhook_log.resend(runtime.db, principal.account_id, body.delivery_id)
    return wire.ok(hooks_wire.delivery(item), "操作成功")
