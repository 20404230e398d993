"""The console pages' own JSON and event-stream endpoints (session-authenticated, CSRF-checked
for POSTs): the live quote, media upload, and the run's event stream (the same stream code as
``GET /workflow/run/events``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from wfrun.services import catalog, run_stream, runs
from wfrun.web import forms
from wfrun.web.context import Ctx, build_ctx
from wfrun.web.routing import JsonRoute

router = APIRouter(route_class=JsonRoute)
CtxDep = Annotated[Ctx, Depends(build_ctx)]
UPLOAD_PATH = "/upload"


@router.post("/workflows/{workflow_id}/quote")
async def quote(ctx: CtxDep, workflow_id: str) -> dict[str, Any]:
    """The quote of the form as it stands (the API's ``run/quote`` data)."""
    me = ctx.user()
    await ctx.check_csrf()
    form = await ctx.request.form()
    row = await catalog.market_info(
        ctx.runtime.db, account_id=me.principal.account_id, workflow_id=workflow_id
    )
    request = forms.run_request(form, row)
    result = await runs.quote_run(ctx.runtime.db, me.principal, request, ctx.runtime.policy)
    data = ctx.bridge.quote_data(
        result.workflow_id, result.revision_id, result.spec.prices, result.quote
    )
    return {"code": 0, "msg": "查询成功", "data": data}


@router.post(UPLOAD_PATH)
async def upload(ctx: CtxDep) -> dict[str, Any]:
    """A multipart ``file`` kept as an asset of the account (``X-CSRF-Token`` header)."""
    me = ctx.user()
    await ctx.check_csrf(header_only=True)  # the body is streamed to storage, not parsed here
    asset = await ctx.bridge.receive_asset(ctx.request, ctx.runtime, me.principal)
    links = ctx.bridge.links(ctx.request, ctx.runtime)
    data = {
        "asset_id": asset.id,
        "asset_uri": f"asset://{asset.id}",
        "url": links.url(asset.storage_key),
        "media_type": asset.media_type,
        "size_bytes": asset.size_bytes,
    }
    return {"code": 0, "msg": "上传成功", "data": data}


@router.get("/runs/{run_id}/events")
async def events(ctx: CtxDep, run_id: str) -> Response:
    me = ctx.user()
    await run_stream.find_run(ctx.runtime.db, me.principal, run_id)
    return ctx.bridge.run_events(ctx.request, ctx.runtime, me.principal, run_id)
