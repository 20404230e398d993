"""Account pages: balance with bills and top-ups, API keys, webhook endpoints and their
delivery log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query
from starlette.responses import Response

from wfrun.errors import ApiKeyNotFound, Forbidden
from wfrun.services import accounts, billing, webhook_log, webhooks
from wfrun.services.console_auth import Identity
from wfrun.web.context import Ctx, build_ctx
from wfrun.web.routing import PageRoute

router = APIRouter(route_class=PageRoute)


def _manager(ctx: Ctx) -> Identity:
    """The signed-in person, who may manage keys and webhook endpoints: not a session opened
    with an API key (a leaked key must not mint keys that outlive its revocation)."""
    me = ctx.user()
    if me.via_key:
        raise Forbidden("a session opened with an API key cannot change keys or webhooks")
    return me


CtxDep = Annotated[Ctx, Depends(build_ctx)]
PAGE_SIZE = 20


@router.get("/billing")
async def billing_page(
    ctx: CtxDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    topups_page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """The balance, a page of bills and a page of top-ups (each list pages on its own)."""
    me = ctx.user()
    db, account_id = ctx.runtime.db, me.principal.account_id
    account = await billing.balance(db, account_id)
    bills, bill_total = await billing.bills(
        db, account_id, order_number=None, page=page, size=PAGE_SIZE
    )
    recharges, recharge_total = await billing.recharges(
        db, account_id, page=topups_page, size=PAGE_SIZE
    )
    return ctx.page(
        "billing.html",
        account=account,
        bills=bills,
        bill_total=bill_total,
        recharges=recharges,
        recharge_total=recharge_total,
        page=page,
        topups_page=topups_page,
        size=PAGE_SIZE,
    )


@router.get("/keys")
async def keys_page(ctx: CtxDep) -> Response:
    me = ctx.user()
    keys = await accounts.list_keys(ctx.runtime.db, me.principal.account_id)
    return ctx.page("keys.html", keys=keys, created=None)


@router.post("/keys")
async def create_key(ctx: CtxDep, name: Annotated[str, Form(max_length=200)] = "") -> Response:
    me = _manager(ctx)
    await ctx.check_csrf()
    db = ctx.runtime.db
    created = await accounts.create_key(db, account_id=me.principal.account_id, name=name)
    keys = await accounts.list_keys(db, me.principal.account_id)
    return ctx.page("keys.html", keys=keys, created=created)


@router.post("/keys/{key_id}/revoke")
async def revoke_key(ctx: CtxDep, key_id: str) -> Response:
    me = _manager(ctx)
    await ctx.check_csrf()
    mine = {k.id for k in await accounts.list_keys(ctx.runtime.db, me.principal.account_id)}
    if key_id not in mine:
        raise ApiKeyNotFound(f"API key {key_id} does not exist")
    await accounts.revoke_key(ctx.runtime.db, key_id)
    return ctx.redirect("/keys")


@router.get("/webhooks")
async def webhooks_page(
    ctx: CtxDep,
    endpoint_id: Annotated[str | None, Query(max_length=64)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    me = ctx.user()
    return await _webhooks(
        ctx, me.principal.account_id, endpoint_id or None, secret=None, page=page
    )


async def _webhooks(
    ctx: Ctx, account_id: str, endpoint_id: str | None, *, secret: str | None, page: int = 1
) -> Response:
    db = ctx.runtime.db
    endpoints = await webhooks.list_all(db, account_id)
    deliveries, total = await webhook_log.page(
        db, account_id, endpoint_id=endpoint_id, run_id=None, page_no=page, size=PAGE_SIZE
    )
    return ctx.page(
        "webhooks.html",
        endpoints=endpoints,
        deliveries=deliveries,
        delivery_total=total,
        endpoint_id=endpoint_id or "",
        secret=secret,
        page=page,
        size=PAGE_SIZE,
    )


@router.post("/webhooks")
async def create_endpoint(
    ctx: CtxDep,
    url: Annotated[str, Form(max_length=2048)] = "",
    description: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    me = _manager(ctx)
    await ctx.check_csrf()
    rt = ctx.runtime
    change = webhooks.EndpointChange(url=url.strip(), description=description)
    _, secret = await webhooks.create(
        rt.db, rt.webhook_box, rt.webhook_policy, me.principal.account_id, change
    )
    return await _webhooks(ctx, me.principal.account_id, None, secret=secret)


@router.post("/webhooks/{endpoint_id}/delete")
async def delete_endpoint(ctx: CtxDep, endpoint_id: str) -> Response:
    me = _manager(ctx)
    await ctx.check_csrf()
    await webhooks.delete(ctx.runtime.db, me.principal.account_id, endpoint_id)
    return ctx.redirect("/webhooks")
