"""GET /workflow/market/list and /workflow/market/info."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from wfrun.api import wire
from wfrun.api.contract.catalog import MarketInfoData, MarketPage
from wfrun.api.contract.envelope import documented
from wfrun.api.deps import Page, PageSize, PrincipalDep, RuntimeDep
from wfrun.services import catalog

router = APIRouter(prefix="/workflow/market", tags=["market"])


@router.get("/list", summary="Published workflows visible to the caller", **documented(MarketPage))
async def market_list(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    keyword: str | None = Query(None, max_length=200),
    tag: str | None = Query(None, max_length=40),
    sort: str = Query("latest", pattern="^(latest|popular)$"),
    page: Page = 1,
    page_size: PageSize = 20,
) -> dict[str, Any]:
    rows, total = await catalog.market_page(
        runtime.db,
        account_id=principal.account_id,
        keyword=keyword,
        tag=tag,
        page=page,
        size=page_size,
    )
    return wire.ok(wire.page(wire.items(rows, wire.market_item), total, page, page_size))


@router.get(
    "/info",
    summary="The published revision of one workflow",
    **documented(MarketInfoData, 404, 409),
)
async def market_info(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    workflow_id: str = Query(min_length=1, max_length=64),
) -> dict[str, Any]:
    row = await catalog.market_info(
        runtime.db, account_id=principal.account_id, workflow_id=workflow_id
    )
    return wire.ok(wire.market_info(row))
